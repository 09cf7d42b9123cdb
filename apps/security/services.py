"""Security decisions that leave a trace: incident lock switches and refused admin addresses, audited."""

from django.conf import settings

from apps.audit import services as audit


def record_incident_lock_change(sender, *, enabled, was_enabled, reason, actor, source, **kwargs):
    """Receiver of core's `lock_changed`: one audit entry per switch, inside the switch's transaction."""
    audit.record(
        actor,
        "incident_lock.on" if enabled else "incident_lock.off",
        None,
        {"enabled": enabled, "was_enabled": was_enabled, "reason": reason, "source": source},
        object_type="core.incidentlock",
        object_id="1",
    )


def record_admin_ip_refused(request, *, path: str) -> None:
    """A staff-surface request from outside ADMIN_IP_ALLOWLIST: one entry per address per
    ADMIN_IP_REFUSAL_AUDIT_SECONDS (0: every one), the rest counted into the next (every one is in /metrics)."""
    user = getattr(request, "user", None)
    actor = user if user is not None and user.is_authenticated else None
    ip = getattr(request, "client_ip", "")
    payload = {"path": path[:500], "method": request.method, "client_ip": ip}
    window = settings.ADMIN_IP_REFUSAL_AUDIT_SECONDS
    if window <= 0:
        audit.record(actor, "security.admin_ip_refused", None, payload, object_type="security.admin")
        return
    audit.record_once_per_window(
        actor, "security.admin_ip_refused", None, payload, key=ip, window=window, object_type="security.admin"
    )


def record_sign_in_throttled(request, *, step: str) -> None:
    """A sign-in step (password, code, enrolment, step-up) refused with 429: one entry per (address, step) per
    minute, the rest counted into the next one, so that guessing at full speed cannot flood the audit table."""
    user = getattr(request, "user", None)
    actor = user if user is not None and user.is_authenticated else ("anonymous", "")
    ip = getattr(request, "client_ip", "") or request.META.get("REMOTE_ADDR", "")
    audit.record_once_per_window(
        actor, "auth.sign_in_throttled", None, {"step": step}, key=f"{ip}:{step}", object_type="accounts.user"
    )
