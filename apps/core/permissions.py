"""DRF permission classes that read only request.user and its OTP state: capabilities by name, MFA for sessions.

They live in core (not accounts) so that every app, audit included, can use them without importing accounts."""

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission


class VerifiedSessionOrToken(BasePermission):
    """A session must have passed TOTP; a token was issued from one that had, so it stands on its own."""

    message = _("Sign in with your authenticator code first.")

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if isinstance(request.successful_authenticator, SessionAuthentication):
            return bool(getattr(user, "is_verified", lambda: False)())
        return True


def capability(name: str) -> type[BasePermission]:
    """A permission class granting access to users holding the capability `name` (e.g. "jobs.cancel_job")."""

    class HasCapability(BasePermission):
        # Lazy: the problem's detail is read in the request's language, like its title.
        message = format_lazy(_("You need the {capability} capability."), capability=name)

        def has_permission(self, request, view):
            return bool(request.user and request.user.has_perm(name))

    HasCapability.__name__ = f"HasCapability[{name}]"
    return HasCapability
