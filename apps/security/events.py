"""The one write path of security events: a SecurityEvent row, an audit entry (`security.<event_type>`, which
is how the SIEM sees it) and a Prometheus counter per (event type, severity)."""

from django.db import transaction

from apps.audit import services as audit
from apps.core import request_context

from . import metrics
from .models import EventType, SecurityEvent, Severity


def record_event(event_type: str, severity: str, *, actor=None, username: str = "", client_ip=None, **details):
    """Write one security event; `actor` is the user who acted (None: the system or an anonymous caller).

    The client IP and request id come from the request context unless given; `details` hold no secrets.
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
        audit.record(
            actor_user if actor_user is not None else ("anonymous", ""),
            f"security.{event_type}",
            None,
            {"severity": severity, "client_ip": ip or "", "request_id": request_id, "username": username, **details},
            object_type="security.securityevent",
            object_id=str(event.pk),
        )
    metrics.SECURITY_EVENTS.labels(event_type, severity).inc()
    return event
