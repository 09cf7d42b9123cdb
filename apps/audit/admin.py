"""A read-only audit browser for auditors and admins, with a "verify now" page."""

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import selectors, services
from .db_verification import verify_database
from .models import AuditCheckpoint, AuditLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes audit rows here, superusers included."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "tenant_id")
    list_filter = ("actor_type", "action", ("ts", admin.DateFieldListFilter))
    search_fields = ("=actor_id", "=action", "=object_id", "=request_id", "object_type")
    search_help_text = _("Exact actor id, action, object id or request id; or part of an object type.")
    date_hierarchy = "ts"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-id",)
    change_list_template = "admin/audit/auditlog/change_list.html"

    def get_queryset(self, request):
        # Tenant-scoped like every other read: another tenant's entries do not exist here (issue 11).
        return selectors.entries_visible_to(request.user, super().get_queryset(request))

    def get_urls(self):
        verify = path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_auditlog_verify")
        return [verify, *super().get_urls()]

    def verify_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            public_key = services.signing_key().public_key()
            held = services.held_witness()  # the sealer's witness file: a cut tail fails here too
            error = None
        except ImproperlyConfigured as exc:
            public_key, held, error = None, None, str(exc)
        report = None
        if public_key is not None:
            report = verify_database(public_key=public_key, witness=held)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Verify the audit trail"),
            "opts": self.model._meta,
            "report": report,
            "error": error,
            "latest_checkpoint": AuditCheckpoint.objects.order_by("-tree_size").first(),
            "unsealed": selectors.unsealed_count(),
        }
        return TemplateResponse(request, "admin/audit/auditlog/verify.html", context)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("tree_size", "ts", "key_id", "merkle_root", "head_hash")
    ordering = ("-tree_size",)
    exclude = ("frontier",)
