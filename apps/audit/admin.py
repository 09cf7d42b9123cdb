"""A read-only audit browser for auditors and admins, with a "verify now" page."""

from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import selectors, services
from .db_verification import verify_database
from .models import ActorType, AuditCheckpoint, AuditLog


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


# The audit log stores ids only (it knows no other app); the list resolves them by model label, one query
# per page each, and the export keeps the ids.
TENANT_MODEL = "accounts.Tenant"


class NamedActorsChangeList(ChangeList):
    """The changelist of one page of entries, with the names of their user actors and tenants looked up."""

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        user_ids = {r.actor_id for r in rows if r.actor_type == ActorType.USER and r.actor_id.isdigit()}
        tenant_ids = {r.tenant_id for r in rows if r.tenant_id is not None}
        users = {str(u.pk): u.get_username() for u in get_user_model()._base_manager.filter(pk__in=user_ids)}
        tenant_model = django_apps.get_model(TENANT_MODEL)
        tenants = dict(tenant_model._base_manager.filter(pk__in=tenant_ids).values_list("pk", "name"))
        for row in rows:
            row.actor_name = users.get(row.actor_id) if row.actor_type == ActorType.USER else None
            row.tenant_name = tenants.get(row.tenant_id)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("seq", "ts", "actor_type", "actor", "action", "object_type", "object_id", "tenant")
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

    def get_changelist(self, request, **kwargs):
        return NamedActorsChangeList

    @admin.display(description=_("actor"), ordering="actor_id")
    def actor(self, obj):
        name = getattr(obj, "actor_name", None)
        return format_html('<span title="{}">{}</span>', obj.actor_id, name) if name else obj.actor_id or "—"

    @admin.display(description=_("tenant"), ordering="tenant_id")
    def tenant(self, obj):
        if obj.tenant_id is None:
            return "—"
        name = getattr(obj, "tenant_name", None)
        return format_html('<span title="{}">{}</span>', obj.tenant_id, name) if name else str(obj.tenant_id)

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
            "intact": _intact_message(report) if report is not None and report.ok else "",
            "error": error,
            "latest_checkpoint": AuditCheckpoint.objects.order_by("-tree_size").first(),
            "unsealed": selectors.unsealed_count(),
        }
        return TemplateResponse(request, "admin/audit/auditlog/verify.html", context)


def _intact_message(report) -> str:
    entries, checkpoints = report.checked, report.checkpoints_checked
    return _("Intact: %(entries)s and %(checkpoints)s verified.") % {
        "entries": ngettext("%(n)d entry", "%(n)d entries", entries) % {"n": entries},
        "checkpoints": ngettext("%(n)d signed checkpoint", "%(n)d signed checkpoints", checkpoints)
        % {"n": checkpoints},
    }


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("tree_size", "ts", "key_id", "merkle_root", "head_hash")
    ordering = ("-tree_size",)
    exclude = ("frontier",)
