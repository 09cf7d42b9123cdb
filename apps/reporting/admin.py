from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.accounts.admin_scoping import TenantScopedAdmin

from . import selectors
from .models import AlertChannel, AlertNotice, AlertRule, ReportExport


@admin.register(ReportExport)
class ReportExportAdmin(admin.ModelAdmin):
    list_display = ("id", "format", "status", "requested_by", "rows_written", "created_at", "finished_at")
    list_filter = ("format", "status")
    list_select_related = ("requested_by",)
    raw_id_fields = ("requested_by",)
    readonly_fields = [f.name for f in ReportExport._meta.fields]

    def get_queryset(self, request):
        # Another analyst's export does not exist here, as in the API (404); superusers see all.
        return selectors.exports_in_admin_for(request.user).select_related("requested_by")

    def has_add_permission(self, request):
        return False  # exports start from the panel or the API, through services.request_export

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertChannel)
class AlertChannelAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "kind", "target", "quiet_start", "quiet_end", "quiet_tz", "is_active")
    list_filter = ("kind", "is_active")
    list_select_related = ("tenant",)


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = (
            "tenant",
            "name",
            "metric",
            "threshold",
            "window_minutes",
            "min_jobs",
            "severity",
            "repeat_every_minutes",
            "channels",
            "is_active",
        )

    def clean(self):
        cleaned = super().clean()
        tenant, channels = cleaned.get("tenant"), cleaned.get("channels")
        if tenant and channels and any(c.tenant_id != tenant.pk for c in channels):
            # A tenant's alerts must never reach another tenant's mailbox or webhook.
            raise forms.ValidationError({"channels": _("Choose channels of the rule's own tenant.")})
        return cleaned


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    form = AlertRuleForm
    list_display = (
        "name",
        "tenant",
        "metric",
        "threshold",
        "window_minutes",
        "severity",
        "repeat_every_minutes",
        "breached_since",
        "is_active",
    )
    list_filter = ("metric", "severity", "is_active")
    list_select_related = ("tenant",)
    readonly_fields = ("breached_since", "last_value", "last_evaluated_at")
    filter_horizontal = ("channels",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "channels":
            from apps.accounts.selectors import scope_to_tenants

            kwargs["queryset"] = scope_to_tenants(AlertChannel.objects.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(AlertNotice)
class AlertNoticeAdmin(TenantScopedAdmin):
    tenant_field = "rule__tenant"
    list_display = (
        "created_at",
        "rule",
        "channel",
        "kind",
        "severity",
        "status",
        "value",
        "send_count",
        "last_sent_at",
    )
    list_filter = ("kind", "status", "severity")
    list_select_related = ("rule", "channel")
    readonly_fields = [f.name for f in AlertNotice._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
