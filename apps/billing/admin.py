from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.admin_scoping import TenantListFilter, TenantScopedAdmin
from apps.accounts.selectors import tenants_for
from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.admin_actions import confirmation_page

from . import selectors, services
from .models import Invoice, InvoiceLine, InvoiceStatus, License, PriceRate, PricingVersion, UsageEvent


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
    actions = ["issue_selected", "recompute_selected"]

    def has_change_permission(self, request, obj=None):
        # issue 19: an issued invoice is never edited, and a usage invoice is written only by its service.
        if obj is not None and (obj.status != InvoiceStatus.DRAFT or obj.from_usage):
            return False
        return super().has_change_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.recalculate_invoice(form.instance)

    @admin.action(description=_("Issue selected draft invoices"), permissions=["change"])
    def issue_selected(self, request, queryset):
        issued = 0
        for invoice in queryset.filter(status=InvoiceStatus.DRAFT):
            services.issue_invoice(invoice, actor=request.user)
            issued += 1
        messages.success(request, ngettext("Issued %(n)d invoice.", "Issued %(n)d invoices.", issued) % {"n": issued})

    @admin.action(description=_("Recompute selected usage invoices"), permissions=["view"])
    def recompute_selected(self, request, queryset):
        for invoice in queryset.filter(from_usage=True):
            result = services.recompute_invoice(invoice)
            if result["matches"]:
                messages.success(request, _("%(number)s recomputes exactly.") % {"number": invoice.number})
            else:
                messages.error(request, _("%(number)s does not recompute to its lines.") % {"number": invoice.number})


# ---------------------------------------------------------------- usage and pricing (issue 19)


@admin.register(UsageEvent)
class UsageEventAdmin(TenantScopedAdmin):
    """Usage is written by the metering, never typed in: the list is read-only; corrections are new events."""

    list_display = ("occurred_at", "tenant", "metric", "dimension", "quantity", "source", "recorded_at")
    list_filter = (TenantListFilter, "metric", "source")
    list_select_related = ("tenant",)
    search_fields = ("=idempotency_key", "dimension")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("corrects",)
    readonly_fields = [f.name for f in UsageEvent._meta.fields]
    change_list_template = "admin/billing/usageevent/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        from django.urls import path

        return [
            path("cost-report/", self.admin_site.admin_view(self.cost_report_view), name="billing_cost_report"),
            *super().get_urls(),
        ]

    def cost_report_view(self, request):
        from django.core.exceptions import PermissionDenied
        from django.template.response import TemplateResponse

        from .serializers import UsageQuerySerializer

        if not request.user.has_perm("billing.view_usage_report"):
            raise PermissionDenied
        parsed = UsageQuerySerializer(data=request.GET, context={"user": request.user}) if request.GET else None
        report = None
        if parsed is not None and parsed.is_valid():
            report = selectors.cost_report(parsed.validated_data["tenant"], parsed.validated_data["period"])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Cost report"),
            "opts": self.model._meta,
            "tenants": tenants_for(request.user),
            "selected": request.GET,
            "report": report,
            "errors": parsed.errors if parsed is not None and not parsed.is_valid() else {},
        }
        return TemplateResponse(request, "admin/billing/cost_report.html", context)


class PriceRateInline(admin.TabularInline):
    model = PriceRate
    extra = 3
    fields = ("metric", "dimension", "tier_from", "unit_price")

    def has_change_permission(self, request, obj=None):
        return obj is None  # rates of a saved version never change

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PricingVersion)
class PricingVersionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """A new price list is a new version (add); a saved version is read-only, never edited."""

    list_display = ("version", "valid_from", "currency", "note", "created_at")
    readonly_fields = ("version", "content_sha256", "created_at")
    inlines = [PriceRateInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [f.name for f in PricingVersion._meta.fields]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.add_pricing_version_row(obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.seal_pricing_version(form.instance, actor=request.user)
