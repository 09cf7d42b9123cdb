"""ERP delivery failures as audit entries, so the SIEM feed ships them (issue 15): one entry per state change of
a message or a profile's breaker, never one per retry, so an ERP outage cannot flood the audit trail.

- `erp.delivery.failed`: a message's first failed attempt that will be retried (later retries: none);
- `erp.dlq.moved`: a message moved to the dead-letter table (retries exhausted, or rejected by the ERP);
- `erp.breaker.opened` / `erp.breaker.closed`: a profile's breaker opened (the outage began: from then on
  messages are held, not attempted, so no more first failures) and closed again.

A credentials or refused-URL failure pauses the profile instead, which `erp.profile.paused` records already.
Each entry carries the message's originating `trace_id` (the SIEM envelope's trace id) where it has one.
"""

from apps.audit import services as audit
from apps.core import request_context


def _summary(row, response=None, **extra) -> dict:
    payload = {
        "sync_id": row.pk,
        "job_id": row.job_id,
        "profile_id": row.profile_id,
        "event_id": str(row.event_id) if row.event_id else "",
        "attempts": row.attempt_count,
        "error_class": response.error_class if response is not None else row.error_class,
        "response_code": response.code if response is not None else row.response_code,
        "error_message": (response.message if response is not None else row.error_message)[:500],
        **extra,
    }
    parsed = request_context.parse_traceparent((row.trace_context or {}).get("traceparent"))
    if parsed:
        payload["trace_id"] = parsed[0]
    return payload


def first_failure(row, response) -> None:
    """A failed attempt of a message that had not failed before; call in the transaction that records it."""
    audit.record(None, "erp.delivery.failed", row, _summary(row, response), tenant_id=row.tenant_id)


def dead_lettered(row, cause: str) -> None:
    """A message moved to the dead-letter table; call in the transaction that moves it."""
    audit.record(None, "erp.dlq.moved", row, _summary(row, cause=cause), tenant_id=row.tenant_id)


def breaker_changed(name: str, state: str, failures: int | None = None) -> None:
    """An ERP profile's breaker (`erp:<profile id>`) opened or closed; other breakers (the SIEM's) are not ERP's."""
    if not name.startswith("erp:"):
        return
    from .models import IntegrationProfile

    profile = IntegrationProfile.objects.filter(pk=name.split(":", 1)[1]).first()
    if profile is None:
        return
    payload = {"breaker": name, "state": state, **({"failures": failures} if failures is not None else {})}
    audit.record(None, f"erp.breaker.{state}", profile, payload, tenant_id=profile.tenant_id)
