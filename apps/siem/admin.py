"""The SIEM feed in the admin: what waits (the DLQ: age, last error), each destination's cursor, re-sending."""

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin_paging import CappedCountPaginator

from . import selectors, services, transport
from .models import SiemDestination, SiemRecord


def _can_see_feed(request) -> bool:
    # The feed holds every tenant's audit entries and the tenantless ones: auditors' scope, not a tenant admin's.
    user = request.user
    return user.is_superuser or user.has_perm("audit.view_tenantless_entries")


def _cursor() -> tuple[int, str]:
    endpoint = selectors._endpoint_name()
    if not endpoint:
        return 0, ""
    dest = SiemDestination.objects.filter(endpoint=endpoint).first()
    return (dest.last_sent_id, dest.last_error) if dest else (0, "")


class WaitingFilter(admin.SimpleListFilter):
    title = _("delivery")
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("waiting", _("Waiting for the SIEM")), ("sent", _("Accepted by the SIEM"))]

    def queryset(self, request, queryset):
        last_sent_id, _error = _cursor()
        if self.value() == "waiting":
            return queryset.filter(pk__gt=last_sent_id)
        if self.value() == "sent":
            return queryset.filter(pk__lte=last_sent_id)
        return queryset


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return _can_see_feed(request) and super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return _can_see_feed(request) and super().has_module_permission(request)


@admin.register(SiemRecord)
class SiemRecordAdmin(_ReadOnly):
    list_display = ("id", "ts", "event", "level", "delivery", "age", "last_error")
    list_filter = (WaitingFilter, "level", "source")
    search_fields = ("=event_id", "event")
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-id",)
    actions = ["resend_selected"]
    fields = ("event_id", "source", "source_ref", "event", "level", "ts", "created_at", "envelope_json")
    readonly_fields = fields

    def get_changelist_instance(self, request):
        self._cursor = _cursor()
        return super().get_changelist_instance(request)

    def _state(self):
        return getattr(self, "_cursor", None) or _cursor()

    @admin.display(description=_("delivery"))
    def delivery(self, obj):
        return _("accepted") if obj.pk <= self._state()[0] else _("waiting")

    @admin.display(description=_("age"))
    def age(self, obj):
        if obj.pk <= self._state()[0]:
            return "-"
        seconds = int((timezone.now() - obj.created_at).total_seconds())
        return _("%(m)s min %(s)s s") % {"m": seconds // 60, "s": seconds % 60}

    @admin.display(description=_("last error"))
    def last_error(self, obj):
        last_sent_id, error = self._state()
        return error if obj.pk > last_sent_id and error else "-"

    @admin.display(description=_("envelope"))
    def envelope_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.envelope, ensure_ascii=False, indent=2))

    def has_resend_permission(self, request):
        return request.user.has_perm("siem.resend_siemrecord")

    @admin.action(description=_("Re-send selected records to the SIEM"), permissions=["resend"])
    def resend_selected(self, request, queryset):
        try:
            sent = services.resend(queryset, actor=request.user, reason="admin action")
        except (OSError, ValueError) as exc:
            self.message_user(
                request, _("The SIEM did not accept them: %(error)s") % {"error": transport.failure_text(exc)},
                messages.ERROR,
            )  # fmt: skip
            return
        self.message_user(request, _("%(n)s records sent to the SIEM again.") % {"n": sent})


@admin.register(SiemDestination)
class SiemDestinationAdmin(_ReadOnly):
    list_display = ("endpoint", "last_sent_id", "backlog", "oldest_waiting", "last_sent_at", "last_attempt_at",
                    "consecutive_failures", "last_error", "breaker_state")  # fmt: skip
    readonly_fields = list_display

    @admin.display(description=_("waiting records"))
    def backlog(self, obj):
        return selectors.backlog_count(obj.endpoint)

    @admin.display(description=_("oldest waiting for"))
    def oldest_waiting(self, obj):
        seconds = int(selectors.backlog_age_seconds(obj.endpoint))
        return _("%(m)s min %(s)s s") % {"m": seconds // 60, "s": seconds % 60} if seconds else "-"

    @admin.display(description=_("circuit breaker"))
    def breaker_state(self, obj):
        state = services.breaker(obj.endpoint).state()
        return _("closed") if state.state == "closed" else state.state
