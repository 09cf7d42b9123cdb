from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutAllView as KnoxLogoutAllView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.throttling import ScopedRateThrottle

from apps.core.incident_lock import OP_REVOKE_TOKEN
from apps.core.permissions import VerifiedSessionOrToken

from . import services


class VerifiedSessionOnly(VerifiedSessionOrToken):
    message = _("API tokens are issued only to a session that passed its authenticator code.")

    def has_permission(self, request, view):
        return isinstance(request.successful_authenticator, SessionAuthentication) and super().has_permission(
            request, view
        )


@extend_schema(
    summary="Issue an API token",
    description="Issues a bearer token (knox, stored hashed, expiring) to an MFA-verified admin session. "
    "Rate-limited (THROTTLE_TOKEN_RATE).",
    request=None,
    responses={
        200: inline_serializer(
            "TokenIssued", {"expiry": serializers.DateTimeField(), "token": serializers.CharField()}
        ),
        403: OpenApiResponse(description="No MFA-verified session, or API_TOKEN_LIMIT_PER_USER tokens already"),
        429: OpenApiResponse(description="Too many token requests"),
    },
)
class TokenCreateApi(KnoxLoginView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [VerifiedSessionOnly]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    def get_post_response(self, request, token, instance):
        services.note_token_issued(request.user, instance)
        return super().get_post_response(request, token, instance)

    def post(self, request, format=None):
        # issue 14: a pair locked out by the sign-in steps gets no token either; the refusal is a failed
        # sign-in step (a security event), written before and outside the token's transaction.
        from apps.security import lockout

        if lockout.is_locked(request._request, request.user.get_username()):
            services.note_sign_in_failure("token", user=request.user)
            seconds = lockout.retry_after_seconds(request._request, {"username": request.user.get_username()})
            raise lockout.locked_out_problem(seconds)
        return self._issue(request, format)

    @transaction.atomic  # the token and its audit entry together
    def _issue(self, request, format):
        # knox answers a full token quota with its own {"error": ...} body; every API error is a problem.
        limit = self.get_token_limit_per_user()
        if limit is not None:
            live = request.user.auth_token_set.filter(Q(expiry__gt=timezone.now()) | Q(expiry__isnull=True))
            if live.count() >= limit:
                raise PermissionDenied(_("You hold the most API tokens allowed; revoke one first."))
        return super().post(request, format)


class TokenRevokeApi(KnoxLogoutView):
    """Revoke the token this request came with; audited."""

    emergency_op = OP_REVOKE_TOKEN

    @transaction.atomic
    def post(self, request, format=None):
        token_key = request._auth.token_key
        response = super().post(request, format)
        services.note_token_revoked(request.user, token_key)
        return response


class TokenRevokeAllApi(KnoxLogoutAllView):
    """Revoke every token of the requester; audited with the keys revoked."""

    emergency_op = OP_REVOKE_TOKEN

    @transaction.atomic
    def post(self, request, format=None):
        token_keys = list(request.user.auth_token_set.values_list("token_key", flat=True))
        response = super().post(request, format)
        services.note_tokens_revoked_all(request.user, token_keys=token_keys)
        return response
