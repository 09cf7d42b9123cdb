"""Live sessions of a user: tracked at sign-in, ended on demand (force logout), beyond MAX_CONCURRENT_SESSIONS,
and on password change, role change, lockout and MFA device removal; ending them ends the API tokens too."""

import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .events import record_event
from .models import EventType, Severity, UserSession

ACTIVITY_KEY = "security_seen_at"
ACTIVITY_EVERY_SECONDS = 60


def _store(session_key):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def live_sessions(user):
    return UserSession.objects.filter(user=user, ended_at__isnull=True)


def on_logged_in(sender, request, user, **kwargs):
    """user_logged_in: remember this session, then end the oldest ones beyond the user's cap."""
    session = getattr(request, "session", None)
    if session is None:
        return
    if session.session_key is None:
        session.save()
    meta = getattr(request, "META", {})
    UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "created_at": timezone.now(),
            "last_activity": timezone.now(),
            "ip_address": getattr(request, "client_ip", "") or meta.get("REMOTE_ADDR", "") or "",
            "user_agent": meta.get("HTTP_USER_AGENT", "")[:300],
            "ended_at": None,
            "end_reason": "",
        },
    )
    cap = max_sessions_for(user)
    if cap:
        extra = list(live_sessions(user).order_by("-created_at", "-pk")[cap:])
        for old in extra:
            end_session(old, reason="concurrent_limit")


def on_logged_out(sender, request, user, **kwargs):
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.filter(session_key=key, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason="logout"
        )


def max_sessions_for(user) -> int:
    """MAX_CONCURRENT_SESSIONS, or the smallest MAX_CONCURRENT_SESSIONS_PER_ROLE of the user's roles."""
    per_role = settings.MAX_CONCURRENT_SESSIONS_PER_ROLE
    if per_role:
        caps = [per_role[g] for g in user.groups.values_list("name", flat=True) if g in per_role]
        if caps:
            return min(caps)
    return settings.MAX_CONCURRENT_SESSIONS


def end_session(row: UserSession, *, reason: str, actor=None) -> None:
    _store(row.session_key).delete()
    row.ended_at = timezone.now()
    row.end_reason = reason
    row.save(update_fields=["ended_at", "end_reason"])
    record_event(
        EventType.SESSION_TERMINATED,
        Severity.LOW if reason in ("concurrent_limit",) else Severity.MEDIUM,
        actor=actor,
        username=row.user.get_username(),
        reason=reason,
        sessions=1,
        tokens=0,
        user_id=row.user_id,
    )


def end_for_user(user, *, reason: str, actor=None, keep_session_key: str | None = None) -> dict:
    """End every live session of `user` (but `keep_session_key`) and revoke all their API tokens; audited."""
    from knox.models import AuthToken

    with transaction.atomic():
        rows = list(live_sessions(user).exclude(session_key=keep_session_key or ""))
        for row in rows:
            _store(row.session_key).delete()
        now = timezone.now()
        UserSession.objects.filter(pk__in=[r.pk for r in rows]).update(ended_at=now, end_reason=reason)
        tokens, _ = AuthToken.objects.filter(user=user).delete()
        if rows or tokens:
            record_event(
                EventType.SESSION_TERMINATED,
                Severity.MEDIUM,
                actor=actor,
                username=user.get_username(),
                reason=reason,
                sessions=len(rows),
                tokens=tokens,
                user_id=user.pk,
            )
    return {"sessions": len(rows), "tokens": tokens}


def end_for_username(username: str, *, reason: str) -> None:
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is not None:
        end_for_user(user, reason=reason)


class SessionActivityMiddleware:
    """Notes a session's last activity, address and browser, at most once a minute per session (one UPDATE, no
    cache read); a session signed in before this tracking existed is added to the list on its next request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and session is not None and user.is_authenticated and session.session_key:
            seen = session.get(ACTIVITY_KEY, 0)
            now = time.time()
            if now - seen >= ACTIVITY_EVERY_SECONDS:
                session[ACTIVITY_KEY] = now
                seen_from = {
                    "last_activity": timezone.now(),
                    "ip_address": getattr(request, "client_ip", "") or "",
                    "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
                }
                updated = UserSession.objects.filter(session_key=session.session_key, ended_at__isnull=True).update(
                    **seen_from
                )
                if not updated and not UserSession.objects.filter(session_key=session.session_key).exists():
                    UserSession.objects.create(user=user, session_key=session.session_key, **seen_from)
        return self.get_response(request)
