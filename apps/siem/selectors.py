"""Read-only questions about the SIEM feed: how much waits and for how long (readiness, metrics, admin)."""

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditLog

from .models import SiemCollectCursor, SiemDestination, SiemRecord


def _endpoint_name() -> str | None:
    from .services import configured_endpoint

    try:
        endpoint = configured_endpoint()
    except ValueError:
        return settings.SIEM_ENDPOINT
    return str(endpoint) if endpoint else None


def _cursor_id(endpoint: str) -> int:
    return SiemDestination.objects.filter(endpoint=endpoint).values_list("last_sent_id", flat=True).first() or 0


def backlog_count(endpoint: str | None = None) -> int:
    """Records the SIEM has not accepted yet (collected and behind no cursor), plus sealed entries not collected."""
    endpoint = endpoint or _endpoint_name()
    if not endpoint:
        return 0
    waiting = SiemRecord.objects.filter(pk__gt=_cursor_id(endpoint)).count()
    position = SiemCollectCursor.objects.filter(source="audit").values_list("position", flat=True).first() or 0
    return waiting + AuditLog.objects.filter(seq__gt=position).count()


def oldest_waiting(endpoint: str | None = None):
    """The time of the oldest record the SIEM has not accepted (audit time for an entry not collected yet)."""
    endpoint = endpoint or _endpoint_name()
    if not endpoint:
        return None
    times = []
    first = SiemRecord.objects.filter(pk__gt=_cursor_id(endpoint)).order_by("pk").values_list("created_at", flat=True)
    if first[:1]:
        times.append(first[0])
    position = SiemCollectCursor.objects.filter(source="audit").values_list("position", flat=True).first() or 0
    uncollected = AuditLog.objects.filter(seq__gt=position).order_by("seq").values_list("ts", flat=True)[:1]
    if uncollected:
        times.append(uncollected[0])
    return min(times) if times else None


def backlog_age_seconds(endpoint: str | None = None) -> float:
    """Seconds the oldest record not yet accepted by the SIEM has waited; 0 when none waits or no SIEM is set."""
    oldest = oldest_waiting(endpoint)
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def ship_lag_seconds(endpoint: str | None = None) -> float:
    """Seconds between now and the time of the last record the SIEM accepted (0 when nothing waits)."""
    return backlog_age_seconds(endpoint)
