"""Data categories (seed 001) and the names of the retention data classes."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    """What a model field holds, for the data inventory."""

    PERSONAL = "PERSONAL", _("Personal")  # identifies a person: name, e-mail, address, IP
    SENSITIVE = "SENSITIVE", _("Sensitive")  # secrets: passwords, tokens, keys
    OPERATIONAL = "OPERATIONAL", _("Operational")  # business data: jobs, counts, settings
    AUDIT = "AUDIT", _("Audit")  # evidence: audit entries, hashes, checkpoints


AUDIT_ENTRIES = "audit_entries"
REPORT_EXPORTS = "report_exports"
ERP_SYNC_ATTEMPTS = "erp_sync_attempts"
IDEMPOTENCY_KEYS = "idempotency_keys"
SESSIONS = "sessions"
OUTBOX_EVENTS = "outbox_events"
SECURITY_EVENTS = "security_events"
SIEM_BACKLOG = "siem_backlog"
RECON_STAGED_ROWS = "recon_staged_rows"
RECON_SNAPSHOTS = "recon_portal_snapshots"

RETENTION_BATCH = 5000
