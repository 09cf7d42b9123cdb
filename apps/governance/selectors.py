"""Governance reads: legal holds a user may see, the inventory with retention, the compliance reports."""

from collections import Counter
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from apps.accounts.selectors import sees_all_tenants, tenants_for
from apps.audit.selectors import TENANTLESS_CAPABILITY, entries_visible_to

from . import inventory, registry
from .models import LegalHold, RetentionPolicy, RetentionRun


def holds_visible_to(user):
    """Everything for a superuser; otherwise the holds on the user's tenants, and the tenant-less holds (global,
    data class, subject) only with the capability to read tenant-less audit entries (auditors)."""
    qs = LegalHold.objects.select_related("tenant")
    if sees_all_tenants(user):
        return qs
    q = Q(tenant__in=tenants_for(user))
    if user.has_perm(TENANTLESS_CAPABILITY):
        q |= Q(tenant__isnull=True)
    return qs.filter(q)


def policies() -> dict[str, RetentionPolicy]:
    from .retention import policy_for

    return {name: policy_for(name) for name in registry.CLASSES}


def policy_json(policy: RetentionPolicy) -> dict:
    return {
        "data_class": policy.data_class, "collection_name": policy.data_class,
        "model": registry.CLASSES[policy.data_class].model_label if policy.data_class in registry.CLASSES else None,
        "retention_days": policy.retention_days, "archive_before_delete": policy.archive_before_delete,
        "description": policy.description, "updated_at": policy.updated_at,
    }  # fmt: skip


def inventory_with_retention() -> dict:
    by_model = {spec.model_label: policy for name, policy in policies().items() for spec in [registry.get(name)]}
    models = []
    for label, fields in inventory.FIELDS.items():
        policy = by_model.get(label)
        models.append({
            "model": label, "fields": {name: str(cat) for name, cat in fields.items()},
            "categories": dict(Counter(str(c) for c in fields.values())),
            "retention": policy_json(policy) if policy else None,
        })  # fmt: skip
    return {"categories": [str(c) for c in inventory.Category], "models": models}


AUDIT_REPORT_ACTIONS = {
    "sign_ins": Q(action="auth.login"),
    "sign_in_failures": Q(action="auth.login_failed") | Q(action="auth.sign_in_throttled"),
    "admin_changes": Q(action__startswith="admin."),
    "exports": Q(action__in=["audit.exported", "admin.export", "reporting.export_downloaded"]),
    "key_rotations": Q(action__in=["erp.keys.rotated", "erp.key.replaced"]),
    "lock_periods": Q(object_type="core.incidentlock"),
    "legal_holds": Q(action__startswith="governance.legal_hold."),
    "retention_runs": Q(action="governance.retention.applied"),
}


def audit_compliance_counts(user, *, days: int) -> dict:
    since = timezone.now() - timedelta(days=days)
    qs = entries_visible_to(user).filter(ts__gte=since)
    counts = qs.aggregate(total=Count("id"), **{k: Count("id", filter=q) for k, q in AUDIT_REPORT_ACTIONS.items()})
    return {"days": days, "since": since, **counts}


def governance_report(user) -> dict:
    from .models import DataSubjectRequest

    now = timezone.now()
    last_runs = {}
    for run in RetentionRun.objects.order_by("data_class", "-started_at"):
        last_runs.setdefault(run.data_class, run)
    requests = DataSubjectRequest.objects.all() if sees_all_tenants(user) else DataSubjectRequest.objects.none()
    return {
        "generated_at": now,
        "retention": [
            {**policy_json(p), "installed": registry.get(name).model() is not None,
             "last_run": _run_json(last_runs.get(name))}
            for name, p in policies().items()
        ],
        "legal_holds_active": holds_visible_to(user).filter(lifted_at__isnull=True).count(),
        "data_requests": {
            "open": requests.exclude(status="completed").exclude(status="refused").count(),
            "overdue": requests.exclude(status__in=["completed", "refused"]).filter(due_at__lt=now).count(),
            "completed": requests.filter(status="completed").count(),
        },
        "inventory": dict(Counter(str(c) for f in inventory.FIELDS.values() for c in f.values())),
    }  # fmt: skip


def _run_json(run):
    if run is None:
        return None
    return {"id": run.pk, "state": run.state, "cutoff": run.cutoff, "deleted": run.deleted, "archived": run.archived,
            "manifest": run.manifest, "started_at": run.started_at, "finished_at": run.finished_at}  # fmt: skip
