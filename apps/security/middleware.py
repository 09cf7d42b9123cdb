"""ADMIN_IP_ALLOWLIST: every staff surface only from these networks (client IP by the trusted-proxy rule).

The surfaces (STAFF_SURFACES) are the admin, the analysts' panel, the reports API under both of its
prefixes, the API token endpoints and the forensic audit export: a session or token from a refused
address reaches none of them. Not covered: the job API with a token (/api/v1/jobs/, machine clients),
ERP inbound (its own ERP_IP_ALLOWLIST), /metrics and /internal/ (INTERNAL_*), health probes, API docs.
"""

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string
from django.urls import reverse

from apps.core.client_ip import address_in, client_ip

from . import metrics, services

# (path prefix, surface name for the counter, answers problem+json rather than a page)
STAFF_SURFACES = (
    ("/admin/", "admin", False),
    ("/panel/", "panel", False),
    ("/reports/", "reports", True),
    ("/api/v1/reports/", "reports", True),
    ("/api/v1/auth/token/", "token", True),
    ("/forensics/", "forensics", True),
)


def staff_surface(path: str):
    """The (prefix, surface, json) entry `path` belongs to, or None; `/panel` counts as `/panel/`."""
    for entry in STAFF_SURFACES:
        if path.startswith(entry[0]) or path == entry[0].rstrip("/"):
            return entry
    return None


class AdminIPAllowlistMiddleware:
    """Put it after AuthenticationMiddleware (so the audit entry names a signed-in user) and before the MFA
    redirect (so a refused address never even reaches the login page). An empty list restricts nothing.

    Every refusal counts in `tezgah_admin_ip_refused_total`; the audit gets one entry per address per
    ADMIN_IP_REFUSAL_AUDIT_SECONDS, so a flood of requests cannot flood the audit trail.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        allowlist = settings.ADMIN_IP_ALLOWLIST
        if allowlist:
            surface = staff_surface(request.path)
            if surface is not None:
                ip = getattr(request, "client_ip", None) or client_ip(request.META)
                # issue 14: allow entries of the admin scope (IPFilterMiddleware's one read) and an approved
                # break-glass of the signed-in user extend the fixed list.
                if not address_in(ip, allowlist) and not getattr(request, "ip_explicitly_allowed", False):
                    from .breakglass import bypass_active

                    if not bypass_active(request):
                        return self._refuse(request, ip, surface)
        return self.get_response(request)

    def _refuse(self, request, ip, surface):
        _prefix, name, wants_json = surface
        metrics.ADMIN_IP_REFUSED.labels(name).inc()
        with transaction.atomic():
            services.record_admin_ip_refused(request, path=request.path)
        if wants_json:
            from django.utils.translation import gettext as _

            from apps.core.problems import problem_response

            return problem_response(
                status_code=403,
                slug="ip-not-allowed",
                title=_("Access refused"),
                detail=_("The operations console is not reachable from your network address."),
            )
        return HttpResponseForbidden(render_to_string("security/admin_ip_refused.html", request=request))


class RateLimitMiddleware:
    """DRF throttles for the Django views that take credentials or files: the admin sign-in steps (per
    (client IP, account) and a higher ceiling per client IP) and admin imports (per user). API views use
    `throttle_classes` as usual. 429 + Retry-After."""

    _LOGIN_STEPS = (
        "login",
        "mfa_verify",
        "mfa_enrol",
        "mfa_step_up",
        "mfa_passkey_complete",
        "mfa_step_up_passkey_complete",
    )

    def __init__(self, get_response):
        self.get_response = get_response
        self._login_paths = None

    def __call__(self, request):
        return self.get_response(request)

    def _throttles_for(self, request):
        from apps.core.throttling import LoginAccountRateThrottle, LoginRateThrottle, UploadRateThrottle

        if self._login_paths is None:
            self._login_paths = {reverse(f"admin:{name}") for name in self._LOGIN_STEPS}
        if request.path in self._login_paths:
            request.throttle_account = _sign_in_account(request)
            # The account's own budget first: a refused try at one account does not spend the address's.
            return [LoginAccountRateThrottle(), LoginRateThrottle()]
        match = request.resolver_match
        # django-import-export's upload step is the "<app>_<model>_import" view.
        if match is not None and (match.url_name or "").endswith("_import") and request.FILES:
            return [UploadRateThrottle()]
        return []

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST":
            return None
        for throttle in self._throttles_for(request):
            if not throttle.allow_request(request, None):
                return self._refuse(request, throttle)
        return None

    def _refuse(self, request, throttle):
        if throttle.scope in ("login", "login_user"):
            services.record_sign_in_throttled(request, step=request.resolver_match.url_name or request.path)
        from math import ceil

        from django.http import HttpResponse
        from django.utils.translation import gettext as _

        response = HttpResponse(_("Too many attempts; wait and try again."), status=429, content_type="text/plain")
        response["Retry-After"] = str(max(1, ceil(throttle.wait() or 1)))
        return response


def _sign_in_account(request) -> str:
    """The account a sign-in step is about: the username typed at the password step, the user who passed
    the password step at the code and enrolment steps, the signed-in user at step-up ("" if none)."""
    name = (request.POST.get("username") or "").strip()[:150]
    if name:
        return f"name:{name}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    from apps.accounts.mfa_session import PENDING_KEY

    pending = request.session.get(PENDING_KEY) if hasattr(request, "session") else None
    return f"user:{pending['uid']}" if pending and pending.get("uid") else ""


class IPFilterMiddleware:
    """issue 14: the IP allow/block lists (apps/security/iplists.py) on every request: one cache read.

    Put it right after RequestContextMiddleware (the client IP) so a blocked address costs no session read.
    A refusal is 403 (problem+json under /api/), counted in `tezgah_ip_refused_total` by scope, and written as
    a security event at most once per address and scope per minute."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import iplists

        scope = iplists.scope_of(request.path)
        if scope is not None:
            ip = getattr(request, "client_ip", None) or client_ip(request.META)
            allowed, explicit = iplists.decide(ip, scope)
            request.ip_explicitly_allowed = explicit
            if not allowed:
                return self._refuse(request, ip, scope)
        return self.get_response(request)

    def _refuse(self, request, ip, scope):
        from django.core.cache import cache
        from django.utils.translation import gettext as _

        from apps.core.problems import problem_response

        from .events import record_event
        from .models import EventType, Severity

        metrics.IP_REFUSED.labels(scope).inc()
        if cache.add(f"security:ip-refused:{ip}:{scope}", 1, 60):
            record_event(EventType.IP_REFUSED, Severity.MEDIUM, client_ip=ip, scope=scope, path=request.path[:200])
        if request.path.startswith("/api/") or (scope == "admin" and staff_surface(request.path)[2]):
            return problem_response(
                status_code=403,
                slug="ip-blocked",
                title=_("Access refused"),
                detail=_("Requests from your network address are not accepted."),
            )
        return HttpResponseForbidden(render_to_string("security/ip_blocked.html", request=request))


class DeviceCookieMiddleware:
    """issue 14: gives the browser its device cookie in the answer to the request that finished signing in
    (password and second factor: `lockout.note_signed_in` marks it), so that its later failures count against
    (username, device) rather than the address it shares with others."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        from . import lockout

        if lockout.device_cookie_pending(request):
            lockout.set_device_cookie(request, response)
        return response
