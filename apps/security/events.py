"""The one write path of security events: a SecurityEvent row, an audit entry (`security.<event_type>`, which
is how the SIEM sees it) and a Prometheus counter per (event type, severity)."""

from django.db import transaction

from apps.audit import services as audit
from apps.core import request_context

from . import metrics
from .models import EventType, SecurityEvent, Severity


def record_event(
    event_type: str,
    severity: str,
    *,
    actor=None,
    username: str = "",
    client_ip=None,
    audit_action: str | None = None,
    audit_actor=None,
    target=None,
    **details,
):
    """Write one security event; `actor` is the user who acted (None: the system or an anonymous caller).

    The client IP and request id come from the request context unless given; `details` hold no secrets.
    `audit_action` names the event's one audit entry when an older name is the contract (a failed sign-in
    step stays `auth.login_failed`, so the event and the audit are one entry, not two); `audit_actor` and
    `target` are that entry's actor and object when they differ from the event's.
    """
    if event_type not in EventType.values or severity not in Severity.values:
        raise ValueError(f"unknown security event {event_type!r}/{severity!r}")
    context = request_context.current()
    ip = context.client_ip if client_ip is None else client_ip
    request_id = "" if context.request_id == "-" else context.request_id
    actor_user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        event = SecurityEvent.objects.create(
            event_type=event_type,
            severity=severity,
            actor=actor_user,
            username=(username or "")[:150],
            client_ip=ip or "",
            request_id=request_id,
            details=details,
        )
        payload = {"severity": severity, "client_ip": ip or "", "request_id": request_id, "username": username}
        payload.update(details)
        if audit_actor is None:
            audit_actor = actor_user if actor_user is not None else ("anonymous", "")
        if target is not None:  # the entry is about the user; it names its event
            audit.record(audit_actor, audit_action or f"security.{event_type}", target, {**payload, "event": event.pk})
        else:
            audit.record(
                audit_actor,
                audit_action or f"security.{event_type}",
                None,
                payload,
                object_type="security.securityevent",
                object_id=str(event.pk),
            )
    metrics.SECURITY_EVENTS.labels(event_type, severity).inc()
    return event
