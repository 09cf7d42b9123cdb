"""The retention data classes: which model each covers, by which timestamp, and how its rows are deleted.

One entry per data class. A class whose model is not installed (another app's, not merged yet) is listed and
skipped cleanly. `tenant_field` / `subject_field` say how a tenant or subject legal hold finds its rows; a class
without one holds no tenant's or person's data in a column a hold could match (documented in docs/governance.md).
The audit log is special: it leaves only in whole checkpoint segments (apps.governance.retention).
Derived data has no class: the report rollups (reporting.JobRollup, JobDurationRollup and their month and
day-status levels) are counts of jobs_job
kept by its triggers, so whatever deletes jobs deletes their share of the rollups in the same transaction.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db.models import Q

from . import constants


def delete_rows(model, pks) -> int:
    """The ordinary batch deleter: the ORM's delete of exactly these rows (cascades and file fields included)."""
    deleted, _ = model._default_manager.filter(pk__in=pks).delete()
    return deleted


def delete_exports(model, pks) -> int:
    """Report exports: the file in the exports storage first, then the row."""
    from django.core.files.storage import storages

    storage = storages["exports"]
    for name in model._default_manager.filter(pk__in=pks).exclude(file_name="").values_list("file_name", flat=True):
        storage.delete(name)
    return delete_rows(model, pks)


@dataclass(frozen=True)
class DataClass:
    name: str
    model_label: str
    timestamp_field: str
    description: str
    default_days: Callable[[], int]
    tenant_field: str | tuple[str, ...] | None = None  # one lookup path, or several that each reach a tenant
    subject_field: str | None = None
    eligible: Callable[[], Q] = field(default=lambda: Q())
    deleter: Callable = delete_rows
    archive_by_default: bool = False

    def model(self):
        """The model, or None when its app is not installed (the class is then skipped)."""
        try:
            model = apps.get_model(self.model_label)
        except LookupError:
            return None
        names = {f.name for f in model._meta.get_fields()}
        # A class may be counted from a related row's time (recon's staged rows from their file's).
        return model if self.timestamp_field.split("__")[0] in names else None


def _days(seconds: int) -> int:
    return max(1, math.ceil(seconds / 86400))


def _published():
    return Q(status="published")


def _recon_runs_kept():
    """Recon runs whose bulk rows must stay: a run an open or suppressed break names (first or last run), a run
    still going, and a run whose snapshot a later re-run compares against (`snapshot_of`)."""
    run = apps.get_model("recon", "ReconRun")._default_manager
    brk = apps.get_model("recon", "Break")._default_manager.filter(state__in=("open", "suppressed"))
    return (
        Q(pk__in=brk.values("first_run")) | Q(pk__in=brk.values("last_run")) | Q(status="running")
        | Q(pk__in=run.filter(snapshot_of__isnull=False).values("snapshot_of"))
    )  # fmt: skip


def _recon_files_unreferenced():
    """Staged rows whose file no kept run (above) has read."""
    kept = apps.get_model("recon", "ReconRun")._default_manager.filter(_recon_runs_kept()).values("file")
    return ~Q(file_id__in=kept)


def _recon_snapshots_unreferenced():
    kept = apps.get_model("recon", "ReconRun")._default_manager.filter(_recon_runs_kept()).values("pk")
    return ~Q(run_id__in=kept)


def _shipped_everywhere():
    """SIEM records with an id at or below every destination's cursor (none while no destination exists)."""
    from django.db.models import Min

    shipped = apps.get_model("siem", "SiemDestination")._default_manager.aggregate(upto=Min("last_sent_id"))["upto"]
    return Q(pk__lte=shipped) if shipped else Q(pk__in=[])


CLASSES: dict[str, DataClass] = {
    c.name: c
    for c in (
        DataClass(
            constants.AUDIT_ENTRIES, "audit.AuditLog", "ts", "Audit trail: 7 years by default (AUDIT_RETENTION_DAYS)",
            lambda: settings.AUDIT_RETENTION_DAYS, tenant_field="tenant_id", subject_field="actor_id",
            archive_by_default=True,
        ),
        DataClass(
            constants.REPORT_EXPORTS, "reporting.ReportExport", "created_at",
            "Report export files and their rows: the signed link's TTL (EXPORT_SIGNED_URL_TTL), at least a day",
            lambda: _days(settings.EXPORT_SIGNED_URL_TTL), subject_field="requested_by_id", deleter=delete_exports,
        ),
        DataClass(
            constants.ERP_SYNC_ATTEMPTS, "erp.ErpSyncAttempt", "started_at", "HTTP attempts of ERP deliveries",
            lambda: settings.DEFAULT_RETENTION_DAYS, tenant_field="sync__tenant_id",
        ),
        DataClass(
            constants.IDEMPOTENCY_KEYS, "core.IdempotencyRecord", "created_at",
            "Stored Idempotency-Key answers: their TTL (IDEMPOTENCY_KEY_TTL_SECONDS)",
            lambda: _days(settings.IDEMPOTENCY_KEY_TTL_SECONDS),
        ),
        DataClass(
            constants.SESSIONS, "sessions.Session", "expire_date", "Web sessions, counted from their expiry",
            lambda: 7,
        ),
        DataClass(
            constants.OUTBOX_EVENTS, "events.OutboxEvent", "created_at", "Published outbox events",
            lambda: 30, eligible=_published,
        ),
        # Security events carry no tenant column: a tenant hold reaches them through their actor, i.e. the events of
        # everyone who works on a held tenant (directly or through a role group) are kept.
        DataClass(
            constants.SECURITY_EVENTS, "security.SecurityEvent", "created_at", "Security events",
            lambda: settings.DEFAULT_RETENTION_DAYS, subject_field="actor_id",
            tenant_field=("actor__tenantuserobjectpermission__content_object_id",
                          "actor__groups__tenantgroupobjectpermission__content_object_id"),
        ),
        # Only what every SIEM destination has accepted may go: a record behind any destination's cursor stays,
        # however old, so an outage longer than the policy loses nothing.
        DataClass(
            constants.SIEM_BACKLOG, "siem.SiemRecord", "created_at", "SIEM records every destination accepted",
            lambda: 30, eligible=_shipped_everywhere,
        ),
        # Recon's bulk rows only (the file registry, runs, breaks and config versions are history and stay): a
        # file's staged ERP rows and a run's portal snapshot, never those an open break or a re-run still needs.
        DataClass(
            constants.RECON_STAGED_ROWS, "recon.StagedRow", "file__created_at",
            "Staged rows of reconciled ERP files (counted from the file's arrival); runs keep their counts",
            lambda: 90, tenant_field="file__tenant_id", eligible=_recon_files_unreferenced,
        ),
        DataClass(
            constants.RECON_SNAPSHOTS, "recon.PortalRow", "run__started_at",
            "Portal snapshots of reconciliation runs (counted from the run's start)",
            lambda: 90, tenant_field="run__tenant_id", eligible=_recon_snapshots_unreferenced,
        ),
    )
}  # fmt: skip

# The data classes as choices, for the API and its OpenAPI enum (one component name: settings ENUM_NAME_OVERRIDES).
CLASS_CHOICES = sorted(CLASSES)


def get(name: str) -> DataClass:
    return CLASSES[name]
