"""DRF throttles keyed the way this project needs; counters live in the default cache (Redis in production).

DRF's own `get_ident` believes any X-Forwarded-For when NUM_PROXIES is unset; these use the client IP
resolved by the trusted-proxy rule (apps/core/client_ip.py) instead. Rates are read per request, so a
changed DEFAULT_THROTTLE_RATES (tests, settings overrides) applies at once.
"""

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


def count_in_window(cache, key: str, ttl: int) -> int:
    """Add one to the counter `key` (created with expiry `ttl` seconds) and return its new value, atomically."""
    if getattr(cache, "client", None) is not None and hasattr(cache.client, "get_client"):
        # django-redis: INCR and EXPIRE in one round trip (Django's cache API needs an add and an incr).
        full_key = cache.make_key(key)
        pipe = cache.client.get_client(write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl)
        return int(pipe.execute()[0])
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, ttl)
        return 1


class _LiveRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def __init__(self):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)


def _client_ip(request) -> str:
    return getattr(request, "client_ip", "") or request.META.get("REMOTE_ADDR", "")


class LoginRateThrottle(_LiveRateThrottle):
    """Admin sign-in steps (password, TOTP, enrolment, step-up) per client IP: the ceiling of one address,
    sized for everybody behind the biggest NAT signing in at once (THROTTLE_LOGIN_RATE)."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": _client_ip(request)}


class LoginAccountRateThrottle(_LiveRateThrottle):
    """Admin sign-in steps per (client IP, account): `request.throttle_account` names the account (set by
    the caller: the username typed, or the user the password step passed). One hammered account spends its
    own budget (THROTTLE_LOGIN_USER_RATE), not the address's that its neighbours share."""

    scope = "login_user"

    def get_cache_key(self, request, view):
        account = getattr(request, "throttle_account", None)
        if not account:
            return None
        digest = hashlib.sha256(account.encode()).hexdigest()[:24]  # no usernames in cache keys
        return self.cache_format % {"scope": self.scope, "ident": f"{_client_ip(request)}:{digest}"}


class UploadRateThrottle(_LiveRateThrottle):
    """File uploads (imports) per signed-in user, else per client IP."""

    scope = "upload"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else _client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ProfileRateThrottle(_LiveRateThrottle):
    """Per integration profile: the view sets `request.throttle_ident` once it knows the caller's profile.

    A fixed-window counter (one atomic cache increment per request) instead of DRF's request-history list,
    which is read, extended and written back whole on every request: at thousands of requests a minute
    that list is the throttle's main cost, and two processes can overwrite each other's update.
    """

    scope = "erp_inbound"

    def get_cache_key(self, request, view):
        ident = getattr(request, "throttle_ident", None)
        return None if ident is None else self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self._window_end = (window + 1) * self.duration
        self._now = now
        return count_in_window(self.cache, f"{key}:{window}", self.duration + 1) <= self.num_requests

    def wait(self):
        return max(1.0, self._window_end - self._now)
