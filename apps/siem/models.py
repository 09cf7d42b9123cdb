"""The SIEM feed's durable table (one row per record to ship), its collection cursors and destinations."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SiemRecord(models.Model):
    """One record for the SIEM: its envelope (already masked) is what every send and replay ships.

    Rows are written by `services.collect` only, one collector at a time, so ids grow in the order the
    sources were read and a destination's cursor (`SiemDestination.last_sent_id`) can say "all up to here".
    """

    event_id = models.UUIDField(_("event id"), unique=True)
    source = models.CharField(_("source"), max_length=16)
    source_ref = models.BigIntegerField(_("source position"))
    event = models.CharField(_("event"), max_length=100)
    level = models.CharField(_("level"), max_length=8)
    ts = models.DateTimeField(_("time"))
    envelope = models.JSONField(_("envelope"))
    # The RFC 5424 message as sent (rendered once, at collection): shipping reads and frames it, nothing more.
    message = models.TextField(_("syslog message"))
    created_at = models.DateTimeField(_("collected at"), default=timezone.now)

    class Meta:
        db_table = "siem_records"
        verbose_name = _("SIEM record")
        verbose_name_plural = _("SIEM records")
        ordering = ["-id"]
        permissions = [("resend_siemrecord", _("Can re-send SIEM records"))]
        constraints = [models.UniqueConstraint(fields=["source", "source_ref"], name="siem_record_source_once")]
        indexes = [
            models.Index(fields=["ts"], name="siem_record_ts"),
            models.Index(fields=["event", "ts"], name="siem_record_event_ts"),
        ]

    def __str__(self):
        return f"{self.event} #{self.pk}"


class SiemCollectCursor(models.Model):
    """How far `collect` has read a source: audit entries by seq, checkpoints by tree size."""

    source = models.CharField(max_length=16, primary_key=True)
    position = models.BigIntegerField(default=0)

    class Meta:
        db_table = "siem_collect_cursors"

    def __str__(self):
        return f"{self.source} @{self.position}"


class SiemDestination(models.Model):
    """One SIEM endpoint and how far it has accepted the feed: every record with id <= last_sent_id."""

    endpoint = models.CharField(_("endpoint"), max_length=300, unique=True)
    last_sent_id = models.BigIntegerField(_("last record sent"), default=0)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)

    class Meta:
        db_table = "siem_destinations"
        verbose_name = _("SIEM destination")
        verbose_name_plural = _("SIEM destinations")
        ordering = ["endpoint"]

    def __str__(self):
        return self.endpoint
