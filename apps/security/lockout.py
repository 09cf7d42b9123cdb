"""Sign-in lockout on django-axes: one failure counter per (username, client) for every sign-in step.

The client is the browser's device cookie when it carries a valid one for that username (OWASP's "device
cookies": `DEVICE_COOKIE_NAME`, signed, given after a full sign-in), else the client IP. So an attacker
without the cookie who locks (alice, NAT address) does not lock alice's own browser, and a browser that
fails MAX_LOGIN_ATTEMPTS times with its cookie locks (alice, that device) only. axes keeps the client in
its `user_agent` column (`device:<digest>` or `address`, see `client_key`); the lockout parameters say
which columns count (`lockout_parameters`).

axes counts the failures (AccessAttempt rows) of the password step by itself (AxesStandaloneBackend); the
other steps (TOTP or backup code, the owner's e-mailed code, step-up) report theirs with `note_failure`
and ask `is_locked` first. A lockout lasts LOCKOUT_DURATION_MINUTES, doubled for each earlier lockout of the
same pair in the last 24 hours (capped at LOCKOUT_MAX_MINUTES); LOCKOUT_IP_BLOCK_AFTER lockouts caused from
one address in 24 hours put that address on the block list for IP_AUTO_BLOCK_HOURS. The key includes the
client address (apps/core/client_ip.py, the trusted-proxy rule), so an attacked account locks for the
attacker's address only and fifty people behind one NAT address keep signing in.
"""

import hashlib
import secrets
from datetime import timedelta
from math import ceil

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt, AccessBase
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.crypto import constant_time_compare, salted_hmac
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


# ---------------------------------------------------------------- device cookie
DEVICE_SALT = "tezgah.security.device-cookie"
DEVICE_MARK = "device:"
ADDRESS_CLIENT = "address"  # the user_agent column of an attempt counted by address


def _username_tag(username: str) -> str:
    # The cookie names its user by a keyed digest: readable cookies do not carry the username.
    return salted_hmac(DEVICE_SALT, username or "").hexdigest()[:32]


def make_device_cookie(username: str, nonce: str | None = None) -> str:
    return signing.dumps({"u": _username_tag(username), "d": nonce or secrets.token_urlsafe(18)}, salt=DEVICE_SALT)


def _cookie_payload(request):
    raw = getattr(request, "COOKIES", {}).get(settings.DEVICE_COOKIE_NAME)
    if not raw:
        return None
    try:
        payload = signing.loads(raw, salt=DEVICE_SALT, max_age=timedelta(days=settings.DEVICE_COOKIE_DAYS))
    except signing.BadSignature:  # forged, tampered or expired: counted by address
        return None
    return payload if isinstance(payload, dict) and {"u", "d"} <= payload.keys() else None


def device_of(request, username: str) -> str:
    """The device digest of `request`'s device cookie when it is valid and was given to `username`, else ""."""
    payload = _cookie_payload(request)
    if payload is None or not username or not constant_time_compare(str(payload["u"]), _username_tag(username)):
        return ""
    return hashlib.sha256(str(payload["d"]).encode()).hexdigest()[:32]


def client_key(request, username: str) -> str:
    device = device_of(request, username)
    return f"{DEVICE_MARK}{device}" if device else ADDRESS_CLIENT


def lockout_parameters(request_or_attempt, credentials=None):
    """AXES_LOCKOUT_PARAMETERS: (username, device) for a browser with its valid device cookie, wherever it is;
    (username, address) for everybody else (only the attempts counted by address, not the devices')."""
    if isinstance(request_or_attempt, AccessBase):
        by_device = (request_or_attempt.user_agent or "").startswith(DEVICE_MARK)
    else:
        by_device = (getattr(request_or_attempt, "axes_user_agent", "") or "").startswith(DEVICE_MARK)
    return [["username", "user_agent"]] if by_device else [["username", "ip_address", "user_agent"]]


def bind_client(request, credentials=None) -> None:
    """Put the client of this attempt where axes reads it (request.axes_user_agent) and remember the device."""
    if request is None or not hasattr(request, "axes_updated"):
        return
    username = get_client_username(request, credentials) or ""
    key = client_key(request, username)
    request.axes_user_agent = key
    request.axes_device = key[len(DEVICE_MARK) :] if key.startswith(DEVICE_MARK) else ""


def device_cookie_pending(request) -> bool:
    return bool(getattr(request, "_tezgah_device_cookie_for", None))


def set_device_cookie(request, response) -> None:
    """After a full sign-in (password and second factor): give the browser its device cookie for this user,
    keeping the device's identity when it already had one for them."""
    user = getattr(request, "user", None)
    username = request._tezgah_device_cookie_for
    if user is None or not user.is_authenticated or user.get_username() != username:
        return
    # django-otp's login() puts the second factor's device on the user; without it no full sign-in happened.
    if getattr(user, "otp_device", None) is None:
        return
    payload = _cookie_payload(request)
    nonce = payload["d"] if payload is not None and device_of(request, username) else None
    response.set_cookie(
        settings.DEVICE_COOKIE_NAME,
        make_device_cookie(username, nonce),
        max_age=settings.DEVICE_COOKIE_DAYS * 24 * 3600,
        secure=settings.DEVICE_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def note_signed_in(sender, request, user, **kwargs):
    """user_logged_in: the view finishes the second factor in this request; the middleware sets the cookie."""
    if request is not None:
        request._tezgah_device_cookie_for = user.get_username()


# ---------------------------------------------------------------- lockouts and their length
def active_lockout(username, ip, now=None, device=""):
    if not username or (not ip and not device):
        return None
    rows = Lockout.active(now).filter(username=username)
    rows = rows.filter(device=device) if device else rows.filter(ip_address=ip, device="")
    return rows.order_by("-until").first()


def cool_off_for(username, ip, now=None, device="") -> timedelta:
    lock = active_lockout(username, ip, now, device)
    return lock.duration if lock is not None else base_duration()


class TezgahAxesHandler(AxesDatabaseHandler):
    """axes' database handler with the client of each attempt bound first (`bind_client`: device or address)
    and a cool-off per (username, client): an escalated lockout keeps its rows for its own length, and a pair
    whose lockout ended starts again from zero failures."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        bind_client(request, credentials)
        return super().user_login_failed(sender, credentials, request, **kwargs)

    def filter_user_attempts(self, request, credentials=None):
        bind_client(request, credentials)
        return super().filter_user_attempts(request, credentials)

    def get_user_attempts(self, request, credentials=None):
        attempts_list = self.filter_user_attempts(request, credentials)
        username = get_client_username(request, credentials)
        device = getattr(request, "axes_device", "")
        threshold = request.axes_attempt_time - cool_off_for(username, request.axes_ip_address, device=device)
        return [attempts.filter(attempt_time__gte=threshold) for attempts in attempts_list]

    def clean_expired_user_attempts(self, request=None, credentials=None) -> int:
        now = timezone.now()
        stale = Q(attempt_time__lte=now - max_duration())
        if request is not None and hasattr(request, "axes_updated"):
            bind_client(request, credentials)
            username = get_client_username(request, credentials)
            ip = getattr(request, "axes_ip_address", None)
            device = getattr(request, "axes_device", "")
            if username and (ip or device):
                pair = Q(username=username, user_agent=request.axes_user_agent)
                if not device:
                    pair &= Q(ip_address=ip)
                stale |= pair & Q(attempt_time__lte=now - cool_off_for(username, ip, now, device))
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
    device = getattr(request, "axes_device", "") if request is not None else ""
    if active_lockout(username, ip_address, now, device) is not None:
        return  # a refused attempt during the lockout: axes re-sends the signal
    day_ago = now - timedelta(hours=24)
    with transaction.atomic():
        earlier = Lockout.objects.filter(username=username, locked_at__gt=day_ago)
        earlier = earlier.filter(device=device) if device else earlier.filter(ip_address=ip_address, device="")
        level = earlier.count()
        duration = min(base_duration() * (2**level), max_duration())
        lock = Lockout.objects.create(
            username=username,
            ip_address=ip_address,
            device=device,
            locked_at=now,
            until=now + duration,
            level=level,
        )
        record_event(
            EventType.ACCOUNT_LOCKED,
            Severity.HIGH,
            username=username,
            client_ip=ip_address,
            client="device" if device else "address",
            until=lock.until.isoformat(),
            level=level,
            duration_seconds=int(duration.total_seconds()),
        )
        # Lockouts caused from the address, whether counted by device or by address.
        from_ip = Lockout.objects.filter(ip_address=ip_address, locked_at__gt=day_ago).count()
        if from_ip >= settings.LOCKOUT_IP_BLOCK_AFTER:
            from . import iplists

            iplists.auto_block(ip_address, lockouts=from_ip)
    from . import sessions

    sessions.end_for_username(username, reason="lockout")


def retry_after_seconds(request, credentials) -> int:
    username = get_client_username(request, credentials) if credentials is not None else None
    ip = getattr(request, "axes_ip_address", None) or axes_client_ip(request)
    lock = active_lockout(username, ip, device=device_of(request, username or ""))
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
