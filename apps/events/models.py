import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    PUBLISHED = "published", _("Published")
    FAILED = "failed", _("Failed")


class OutboxEvent(models.Model):
    """A versioned domain event written in the transaction of its change, handed to subscribers after commit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event type"), max_length=100)
    event_version = models.PositiveSmallIntegerField(_("event version"))
    payload = models.JSONField(_("payload"))
    aggregate_type = models.CharField(_("aggregate type"), max_length=100)
    aggregate_id = models.CharField(_("aggregate id"), max_length=64)
    # Position of this event among its aggregate's events (1, 2, ...), so consumers can keep their order.
    aggregate_seq = models.PositiveBigIntegerField(_("aggregate sequence"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # A relay that dies holding a row loses it only until this lease runs out; then the sweep takes it.
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # The trace context of the request that wrote the event (request_context.trace_snapshot()), so that work a
    # worker does for it later (an ERP call) carries the originating trace.
    trace_context = models.JSONField(_("trace context"), default=dict, blank=True)

    class Meta:
        db_table = "event_outbox"
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="outbox_status_created"),
            models.Index(fields=["aggregate_type", "aggregate_id", "aggregate_seq"], name="outbox_aggregate"),
            models.Index(fields=["event_type", "created_at"], name="outbox_type_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=OutboxStatus.values), name="outbox_status_known"),
        ]

    def __str__(self):
        return f"{self.event_type} v{self.event_version} {self.aggregate_type}:{self.aggregate_id}"

    def envelope(self) -> dict:
        """What subscribers receive: the payload with the event's identity and version around it."""
        return {
            "id": str(self.id),
            "type": self.event_type,
            "version": self.event_version,
            "aggregate": {"type": self.aggregate_type, "id": self.aggregate_id, "seq": self.aggregate_seq},
            "occurred_at": self.created_at.isoformat(),
            "data": self.payload,
        }
