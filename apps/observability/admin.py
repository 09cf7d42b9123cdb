from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.accounts.admin_scoping import TenantListFilter

from . import selectors
from .models import RequestStat


@admin.register(RequestStat)
class RequestStatAdmin(admin.ModelAdmin):
    """Read-only: the rows are written by the request middleware's batches; above them, the SLA of each window."""

    change_list_template = "admin/observability/requeststat/change_list.html"
    list_display = ("bucket", "tenant", "view", "requests", "errors", "client_errors", "mean_ms")
    list_filter = (TenantListFilter,)
    list_select_related = ("tenant",)
    search_fields = ("view",)
    show_full_result_count = False

    def get_queryset(self, request):
        return selectors.visible_stats(request.user).select_related("tenant")

    @admin.display(description=_("mean (ms)"))
    def mean_ms(self, obj):
        return round(obj.duration_ms_sum / obj.requests, 1) if obj.requests else None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        labels = {"day": _("Last 24 hours"), "week": _("Last 7 days"), "month": _("Last 30 days")}
        windows = []
        for window, label in labels.items():
            result = selectors.sla(request.user, window=window)
            rows = [{"name": _("All (aggregate)"), **result["aggregate"]}]
            rows += [{"name": (t["tenant"] or {}).get("name") or _("No single tenant"), **t} for t in result["tenants"]]
            windows.append({"label": label, "result": result, "rows": rows})
        return super().changelist_view(request, extra_context={**(extra_context or {}), "sla_windows": windows})
