"""Reads about the outbox for health and metrics."""

from django.db.models import Min
from django.utils import timezone

from .models import OutboxEvent, OutboxStatus


def outbox_lag_seconds() -> float:
    """Age of the oldest event not yet handed on (0 when none waits)."""
    oldest = OutboxEvent.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.PROCESSING]).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def outbox_depths() -> dict:
    return {s: OutboxEvent.objects.filter(status=s).count() for s in (OutboxStatus.PENDING, OutboxStatus.FAILED)}


def earlier_unpublished_exists(aggregate_type: str, aggregate_id: str, aggregate_seq: int) -> bool:
    """Whether an event of the same aggregate with a lower sequence is still waiting to be handed on."""
    return OutboxEvent.objects.filter(
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_seq__lt=aggregate_seq,
        status__in=[OutboxStatus.PENDING, OutboxStatus.PROCESSING],
    ).exists()
