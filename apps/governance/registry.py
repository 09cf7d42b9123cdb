"""The retention data classes: which model each covers, by which timestamp, and how its rows are deleted.

One entry per data class. A class whose model is not installed (another app's, not merged yet) is listed and
skipped cleanly. `tenant_field` / `subject_field` say how a tenant or subject legal hold finds its rows; a class
without one holds no tenant's or person's data in a column a hold could match (documented in docs/governance.md).
The audit log is special: it leaves only in whole checkpoint segments (apps.governance.retention).
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
        return model if self.timestamp_field in names else None


def _days(seconds: int) -> int:
    return max(1, math.ceil(seconds / 86400))


def _published():
    return Q(status="published")


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
    )
}  # fmt: skip

# The data classes as choices, for the API and its OpenAPI enum (one component name: settings ENUM_NAME_OVERRIDES).
CLASS_CHOICES = sorted(CLASSES)


def get(name: str) -> DataClass:
    return CLASSES[name]
