from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.admin_scoping import TenantListFilter, TenantScopedAdmin
from apps.core.admin_actions import confirmation_page

from . import services
from .models import Invoice, InvoiceLine, License


class ExtendLicensesForm(forms.Form):
    amount = forms.IntegerField(label=_("Extend by"), min_value=1, max_value=120)
    unit = forms.ChoiceField(label=_("Unit"), choices=[("days", _("days")), ("months", _("months"))])


@admin.register(License)
class LicenseAdmin(TenantScopedAdmin):
    list_display = ("tenant", "product", "seats", "valid_from", "valid_until", "state")
    list_filter = (TenantListFilter, "state", "product")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "product")
    date_hierarchy = "valid_until"
    readonly_fields = ("created_at", "updated_at")
    actions = ["extend_selected"]

    @admin.action(description=_("Extend selected licenses"), permissions=["extend"])
    def extend_selected(self, request, queryset):
        form = ExtendLicensesForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            amount, unit = form.cleaned_data["amount"], form.cleaned_data["unit"]
            chosen = list(queryset)
            extended = services.extend_licenses(chosen, actor=request.user, **{unit: amount})
            count = len(extended)
            messages.success(
                request, ngettext("Extended %(n)d license.", "Extended %(n)d licenses.", count) % {"n": count}
            )
            done = {lic.pk for lic in extended}
            for lic in chosen:
                if lic.pk not in done:
                    messages.warning(
                        request,
                        _("Not extended (revoked): %(license)s of %(tenant)s") % {"license": lic, "tenant": lic.tenant},
                    )
            return None
        return confirmation_page(
            self, request, template="admin/billing/license/extend_confirmation.html", title=_("Extend licenses"),
            action="extend_selected", form=form, queryset=queryset.select_related("tenant"),
        )  # fmt: skip

    def has_extend_permission(self, request):
        return request.user.has_perm("billing.extend_license")


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    fields = ("description", "quantity", "unit_price", "amount")
    readonly_fields = ("amount",)


@admin.register(Invoice)
class InvoiceAdmin(TenantScopedAdmin):
    list_display = ("number", "tenant", "period_start", "period_end", "total", "currency", "status")
    list_filter = (TenantListFilter, "status", "currency")
    list_select_related = ("tenant",)
    search_fields = ("=number",)
    date_hierarchy = "period_start"
    readonly_fields = ("subtotal", "tax", "total", "created_at")
    inlines = [InvoiceLineInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.recalculate_invoice(form.instance)
