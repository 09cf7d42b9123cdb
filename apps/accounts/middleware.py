"""Default-deny for the admin: any /admin/ URL but the login steps needs a staff user verified by TOTP.

AdminSite.admin_view already checks this for views it wraps; this also covers any third-party admin
view that forgets to wrap itself.
"""

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.urls import reverse

_OPEN_NAMES = (
    "login",
    "logout",
    "mfa_verify",
    "mfa_enrol",
    "mfa_passkey_begin",
    "mfa_passkey_complete",
    "mfa_passkey_jsi18n",
)
# APIs mounted under /admin/ check MFA themselves (VerifiedSessionOrToken) and answer problem+json.
_API_PATHS = ("/admin/erp/replay",)


class AdminMFAMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._prefix = None
        self._open_paths = None

    def _paths(self):
        if self._prefix is None:
            self._prefix = reverse("admin:index")
            self._open_paths = {reverse(f"admin:{name}") for name in _OPEN_NAMES}
        return self._prefix, self._open_paths

    def __call__(self, request):
        prefix, open_paths = self._paths()
        if request.path.startswith(prefix) and request.path not in open_paths and request.path not in _API_PATHS:
            user = request.user
            verified = user.is_authenticated and user.is_active and user.is_staff and user.is_verified()
            if not verified:
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
        return self.get_response(request)
