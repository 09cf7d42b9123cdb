"""Sign-in lockout on django-axes: one failure counter per (username, client IP) for every sign-in step.

axes counts the failures (AccessAttempt rows) of the password step by itself (AxesStandaloneBackend); the
other steps (TOTP or backup code, the owner's e-mailed code, step-up) report theirs with `note_failure`
and ask `is_locked` first. A lockout lasts LOCKOUT_DURATION_MINUTES, doubled for each earlier lockout of the
same pair in the last 24 hours (capped at LOCKOUT_MAX_MINUTES); LOCKOUT_IP_BLOCK_AFTER lockouts caused from
one address in 24 hours put that address on the block list for IP_AUTO_BLOCK_HOURS. The key includes the
client address (apps/core/client_ip.py, the trusted-proxy rule), so an attacked account locks for the
attacker's address only and fifty people behind one NAT address keep signing in.
"""

from datetime import timedelta
from math import ceil

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from apps.core.client_ip import client_ip

from .events import record_event
from .models import EventType, Lockout, Severity


def axes_client_ip(request) -> str:
    """AXES_CLIENT_IP_CALLABLE: the one trusted-proxy resolver, never django-ipware's guess."""
    return getattr(request, "client_ip", None) or client_ip(request.META)


def base_duration() -> timedelta:
    return timedelta(minutes=settings.LOCKOUT_DURATION_MINUTES)


def max_duration() -> timedelta:
    return timedelta(minutes=max(settings.LOCKOUT_MAX_MINUTES, settings.LOCKOUT_DURATION_MINUTES))


def cool_off(request=None) -> timedelta:
    """AXES_COOLOFF_TIME; per-pair durations are applied by TezgahAxesHandler below."""
    return base_duration()


def active_lockout(username, ip, now=None):
    if not username or not ip:
        return None
    return Lockout.active(now).filter(username=username, ip_address=ip).order_by("-until").first()


def cool_off_for(username, ip, now=None) -> timedelta:
    lock = active_lockout(username, ip, now)
    return lock.duration if lock is not None else base_duration()


class TezgahAxesHandler(AxesDatabaseHandler):
    """axes' database handler with a cool-off per (username, address): an escalated lockout keeps its rows
    for its own length, and a pair whose lockout ended starts again from zero failures."""

    def get_user_attempts(self, request, credentials=None):
        attempts_list = self.filter_user_attempts(request, credentials)
        username = get_client_username(request, credentials)
        threshold = request.axes_attempt_time - cool_off_for(username, request.axes_ip_address)
        return [attempts.filter(attempt_time__gte=threshold) for attempts in attempts_list]

    def clean_expired_user_attempts(self, request=None, credentials=None) -> int:
        now = timezone.now()
        stale = Q(attempt_time__lte=now - max_duration())
        if request is not None:
            username = get_client_username(request, credentials)
            ip = getattr(request, "axes_ip_address", None)
            if username and ip:
                stale |= Q(username=username, ip_address=ip, attempt_time__lte=now - cool_off_for(username, ip, now))
        count, _ = AccessAttempt.objects.filter(stale).delete()
        return count


# ---------------------------------------------------------------- the other sign-in steps
def is_locked(request, username: str) -> bool:
    return AxesProxyHandler.is_locked(request, {"username": username})


def note_failure(request, username: str, *, step: str) -> bool:
    """Count a wrong code (or other failed step) against `username` from this client; returns whether the
    pair is now locked out (axes' middleware then answers with the lockout page)."""
    user_login_failed.send(sender=__name__, credentials={"username": username, "step": step}, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def refuse(request, username: str):
    """The lockout answer for a step that found the pair locked before trying (no failure is counted)."""
    record_event(EventType.LOCKED_OUT_REFUSED, Severity.MEDIUM, username=username, path=request.path[:200])
    return lockout_response(request, None, {"username": username})


def locked_out_problem(seconds):
    """The API's answer for a locked-out pair: 429 problem+json with Retry-After."""
    from apps.core.problems import Problem

    exc = Problem(
        status_code=429,
        slug="sign-in-locked",
        title=_("Too many failed sign-in attempts"),
        detail=_("Sign-in from your address is paused; try again later."),
        retry_after=seconds,
    )
    exc.wait = seconds  # DRF's handler turns it into Retry-After
    return exc


# ---------------------------------------------------------------- axes' signal and answer
def on_user_locked_out(sender, request, username, ip_address, **kwargs):
    """axes reached MAX_LOGIN_ATTEMPTS for (username, address): record the lockout with its escalated
    length; the third such lockout from one address in 24 hours blocks that address."""
    now = timezone.now()
    username = username or ""
    if active_lockout(username, ip_address, now) is not None:
        return  # a refused attempt during the lockout: axes re-sends the signal
    day_ago = now - timedelta(hours=24)
    with transaction.atomic():
        level = Lockout.objects.filter(username=username, ip_address=ip_address, locked_at__gt=day_ago).count()
        duration = min(base_duration() * (2**level), max_duration())
        lock = Lockout.objects.create(
            username=username, ip_address=ip_address, locked_at=now, until=now + duration, level=level
        )
        record_event(
            EventType.ACCOUNT_LOCKED,
            Severity.HIGH,
            username=username,
            client_ip=ip_address,
            until=lock.until.isoformat(),
            level=level,
            duration_seconds=int(duration.total_seconds()),
        )
        from_ip = Lockout.objects.filter(ip_address=ip_address, locked_at__gt=day_ago).count()
        if from_ip >= settings.LOCKOUT_IP_BLOCK_AFTER:
            from . import iplists

            iplists.auto_block(ip_address, lockouts=from_ip)
    from . import sessions

    sessions.end_for_username(username, reason="lockout")


def retry_after_seconds(request, credentials) -> int:
    username = get_client_username(request, credentials) if credentials is not None else None
    ip = getattr(request, "axes_ip_address", None) or axes_client_ip(request)
    lock = active_lockout(username, ip)
    until = lock.until if lock is not None else timezone.now() + base_duration()
    return max(1, ceil((until - timezone.now()).total_seconds()))


def wants_problem(request) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; problem+json for the API, a Turkish page for a browser.

    It never names the username or says whether it exists: an unknown name locks exactly like a real one."""
    seconds = retry_after_seconds(request, credentials)
    retry_at = timezone.localtime(timezone.now() + timedelta(seconds=seconds))
    if wants_problem(request):
        from apps.core.problems import problem_response

        response = problem_response(
            status_code=429,
            slug="sign-in-locked",
            title=_("Too many failed sign-in attempts"),
            detail=_("Sign-in from your address is paused; try again after %(time)s.")
            % {"time": formats.date_format(retry_at, "DATETIME_FORMAT")},
            retry_after=seconds,
        )
    else:
        body = render_to_string(
            "security/locked_out.html",
            {"retry_at": retry_at, "minutes": ceil(seconds / 60)},
            request=request,
        )
        response = HttpResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    return response


# ---------------------------------------------------------------- lifting
def unlock(username: str, *, actor=None) -> int:
    """Lift every axes lock and failure count of `username` (any address); returns the lockouts lifted."""
    now = timezone.now()
    with transaction.atomic():
        attempts = AccessAttempt.objects.filter(username=username).count()
        AccessAttempt.objects.filter(username=username).delete()
        lifted = Lockout.active(now).filter(username=username).update(lifted_at=now, lifted_by=actor)
        if lifted or attempts:
            record_event(
                EventType.ACCOUNT_UNLOCKED,
                Severity.MEDIUM,
                actor=actor,
                username=username,
                lockouts=lifted,
                failed_attempts=attempts,
            )
    return lifted
