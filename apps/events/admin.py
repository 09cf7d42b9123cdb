"""The outbox, read-only, with a retry for events whose subscribers kept failing."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import services
from .models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "event_version", "aggregate_type", "aggregate_id", "aggregate_seq",
                    "status", "attempts", "processed_at")  # fmt: skip
    list_filter = ("status", "event_type")
    search_fields = ("=id", "=aggregate_id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-created_at",)
    actions = ["retry_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return request.user.is_superuser

    @admin.action(description=_("Retry selected failed events"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        count = services.requeue_failed(queryset, actor=request.user)
        self.message_user(request, _("%(n)s events will be handed on again.") % {"n": count})
