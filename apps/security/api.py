"""Seed 001's /api/enterprise/security/* endpoints: locked accounts, address lists, events, sessions, break-glass.

Capabilities, not roles; a tenant admin sees and acts on the users of their own tenants only
(accounts.selectors.users_visible_to / can_manage_user); the address lists and break-glass reach every
tenant, so changing them needs capabilities only superusers hold. Mutations take an Idempotency-Key
(every DRF view does, apps/core/idempotency.py); errors are problem+json, bad input 422 naming the field.
"""

import ipaddress
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors as account_selectors
from apps.core.incident_lock import OP_UNLOCK_ACCOUNT
from apps.core.permissions import VerifiedSessionOrToken, capability

from . import breakglass, iplists, lockout, sessions
from .models import SEVERITY_RANK, BreakGlass, IPListEntry, ListType, Lockout, Scope, SecurityEvent, Severity

User = get_user_model()


def _visible_usernames(user):
    """None: every username (superusers); else the usernames of the users `user` may see."""
    if account_selectors.sees_all_tenants(user):
        return None
    return account_selectors.users_visible_to(user).values_list("username", flat=True)


# ---------------------------------------------------------------- lockouts
class LockoutSerializer(serializers.ModelSerializer):
    # What the lockout is keyed by: the browser's device cookie, or the address (ip_address is always set).
    client = serializers.SerializerMethodField()

    class Meta:
        model = Lockout
        fields = ["username", "ip_address", "client", "locked_at", "until", "level"]

    @extend_schema_field(serializers.ChoiceField(choices=["device", "address"]))
    def get_client(self, obj) -> str:
        return "device" if obj.device else "address"


class LockedAccountsApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("security.unlock_account")]

    @extend_schema(
        summary="Locked-out sign-ins (username and address) now", responses={200: LockoutSerializer(many=True)}
    )
    def get(self, request):
        rows = Lockout.active()
        visible = _visible_usernames(request.user)
        if visible is not None:
            rows = rows.filter(username__in=visible)
        return Response(LockoutSerializer(rows[:500], many=True).data)


class UnlockAccountApi(APIView):
    """Lift the lockouts of one username (every address) and its second factors' wrong-code throttle."""

    permission_classes = [VerifiedSessionOrToken, capability("security.unlock_account")]
    emergency_op = OP_UNLOCK_ACCOUNT

    class UnlockAccountInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)

    @extend_schema(
        summary="Unlock an account",
        request=UnlockAccountInputSerializer,
        responses={
            200: inline_serializer(
                "Unlocked", {"username": serializers.CharField(), "lifted": serializers.IntegerField()}
            ),
            404: OpenApiResponse(description="No such user among the ones you manage"),
        },
    )
    def post(self, request):
        params = self.UnlockAccountInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        username = params.validated_data["username"]
        target = User.objects.filter(username=username).first()
        manages = target is not None and account_selectors.can_manage_user(request.user, target)
        if not account_selectors.sees_all_tenants(request.user) and not manages:
            from rest_framework.exceptions import NotFound

            raise NotFound(_("No such user among the ones you manage."))
        with transaction.atomic():
            if target is not None:
                from apps.accounts import services as account_services

                lifted = account_services.unlock_sign_in(target, actor=request.user)
            else:  # a username nobody has (a superuser clearing an attacker's attempts)
                lifted = lockout.unlock(username, actor=request.user)
        return Response({"username": username, "lifted": lifted})


# ---------------------------------------------------------------- address lists
class IPEntrySerializer(serializers.ModelSerializer):
    ip_address = serializers.CharField(source="network")

    class Meta:
        model = IPListEntry
        fields = ["id", "ip_address", "list_type", "scope", "reason", "expires_at", "automatic", "created_at"]


class IPListsApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("security.view_iplistentry")]

    @extend_schema(
        summary="The IP allow and block lists (live entries)",
        responses={
            200: inline_serializer(
                "IPLists",
                {
                    "mode": serializers.CharField(),
                    "whitelist": IPEntrySerializer(many=True),
                    "blacklist": IPEntrySerializer(many=True),
                },
            )
        },
    )
    def get(self, request):
        from django.conf import settings

        rows = IPListEntry.live()
        return Response(
            {
                "mode": settings.IP_FILTER_MODE,
                "admin_ip_allowlist": list(settings.ADMIN_IP_ALLOWLIST),
                "whitelist": IPEntrySerializer(rows.filter(list_type=ListType.ALLOW), many=True).data,
                "blacklist": IPEntrySerializer(rows.filter(list_type=ListType.BLOCK), many=True).data,
            }
        )


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise serializers.ValidationError(_("Not an IPv4/IPv6 address or CIDR network.")) from None


class IPListAddApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("security.add_iplistentry")]

    class IPListAddInputSerializer(serializers.Serializer):
        ip_address = serializers.CharField(max_length=64)
        list_type = serializers.ChoiceField(choices=ListType.choices)
        scope = serializers.ChoiceField(choices=Scope.choices, default=Scope.ALL)
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
        expires_hours = serializers.IntegerField(min_value=1, max_value=24 * 3650, required=False, allow_null=True)

        def validate_ip_address(self, value):
            return _network(value)

    @extend_schema(
        summary="Add an address or CIDR to a list",
        request=IPListAddInputSerializer,
        responses={201: IPEntrySerializer, 422: OpenApiResponse(description="A field is invalid")},
    )
    def post(self, request):
        params = self.IPListAddInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        entry = iplists.add_entry(
            network=data["ip_address"],
            list_type=data["list_type"],
            scope=data["scope"],
            reason=data["reason"],
            expires_hours=data.get("expires_hours"),
            actor=request.user,
        )
        return Response(IPEntrySerializer(entry).data, status=201)


class IPListDeleteApi(APIView):
    """`{ip}` is an address or a CIDR; write a network's slash as is (`/ip-list/10.0.0.0/8`) or as `%2F`."""

    permission_classes = [VerifiedSessionOrToken, capability("security.delete_iplistentry")]

    @extend_schema(
        summary="Remove an address or CIDR from the lists",
        parameters=[OpenApiParameter("list_type", str, enum=ListType.values, required=False)],
        responses={
            200: inline_serializer("IPRemoved", {"removed": serializers.IntegerField()}),
            404: OpenApiResponse(description="Not on the list"),
            422: OpenApiResponse(description="Bad address"),
        },
    )
    def delete(self, request, ip):
        from rest_framework.exceptions import NotFound, ValidationError

        list_type = request.query_params.get("list_type") or None
        if list_type is not None and list_type not in ListType.values:
            raise ValidationError({"list_type": [_("Use whitelist or blacklist.")]})
        try:
            network = _network(ip.replace("%2F", "/").replace("%2f", "/"))
        except serializers.ValidationError as exc:
            raise ValidationError({"ip": exc.detail}) from None
        removed = iplists.remove_entries(network=network, list_type=list_type, actor=request.user)
        if not removed:
            raise NotFound(_("That address is not on the list."))
        return Response({"removed": removed})


# ---------------------------------------------------------------- events
class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)

    class Meta:
        model = SecurityEvent
        fields = [
            "id",
            "created_at",
            "event_type",
            "severity",
            "actor",
            "username",
            "client_ip",
            "request_id",
            "details",
        ]


def _events_for(user):
    rows = SecurityEvent.objects.select_related("actor")
    visible = _visible_usernames(user)
    if visible is not None:
        rows = rows.filter(Q(username__in=visible) | Q(actor__username__in=visible))
    return rows


class EventsApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("security.view_securityevent")]

    class EventsQuerySerializer(serializers.Serializer):
        severity = serializers.ChoiceField(choices=Severity.choices, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
        since = serializers.DateTimeField(required=False)

    @extend_schema(
        summary="Security events, newest first (severity: that one and above)",
        parameters=[EventsQuerySerializer],
        responses={200: EventSerializer(many=True)},
    )
    def get(self, request):
        params = self.EventsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = _events_for(request.user)
        if params.validated_data.get("severity"):
            floor = SEVERITY_RANK[params.validated_data["severity"]]
            rows = rows.filter(severity__in=[s for s, rank in SEVERITY_RANK.items() if rank >= floor])
        if params.validated_data.get("since"):
            rows = rows.filter(created_at__gte=params.validated_data["since"])
        return Response(EventSerializer(rows[: params.validated_data["limit"]], many=True).data)


class SummaryApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("security.view_securityevent")]

    class SummaryQuerySerializer(serializers.Serializer):
        hours = serializers.IntegerField(min_value=1, max_value=24 * 90, default=24)

    @extend_schema(
        summary="Security events per type and severity over a window, lockouts and blocks now",
        parameters=[SummaryQuerySerializer],
        responses={
            200: inline_serializer(
                "SecuritySummary",
                {
                    "hours": serializers.IntegerField(),
                    "events": serializers.DictField(),
                    "locked_accounts": serializers.IntegerField(),
                    "active_blocks": serializers.IntegerField(),
                },
            )
        },
    )
    def get(self, request):
        params = self.SummaryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        hours = params.validated_data["hours"]
        since = timezone.now() - timedelta(hours=hours)
        counts = {}
        rows = _events_for(request.user).filter(created_at__gte=since).values("event_type", "severity")
        for row in rows.annotate(n=Count("id")).order_by():
            counts.setdefault(row["event_type"], {})[row["severity"]] = row["n"]
        locks = Lockout.active()
        visible = _visible_usernames(request.user)
        if visible is not None:
            locks = locks.filter(username__in=visible)
        return Response(
            {
                "hours": hours,
                "events": counts,
                "locked_accounts": locks.count(),
                "active_blocks": IPListEntry.live().filter(list_type=ListType.BLOCK).count(),
            }
        )


# ---------------------------------------------------------------- sessions
class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_activity = serializers.DateTimeField()
    ip_address = serializers.CharField()
    user_agent = serializers.CharField()
    current = serializers.BooleanField()


class SessionsApi(APIView):
    """GET: the live sessions and API tokens of a user; DELETE: end them all (force logout, tokens too)."""

    def get_permissions(self):
        name = "security.delete_usersession" if self.request.method == "DELETE" else "security.view_usersession"
        return [VerifiedSessionOrToken(), capability(name)()]

    def _target(self, request, user_id):
        target = get_object_or_404(account_selectors.users_visible_to(request.user), pk=user_id)
        return target

    @extend_schema(
        summary="A user's live sessions and API tokens",
        responses={
            200: inline_serializer(
                "UserSessions",
                {
                    "user_id": serializers.IntegerField(),
                    "sessions": SessionSerializer(many=True),
                    "tokens": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request, user_id):
        from knox.models import AuthToken

        target = self._target(request, user_id)
        current = getattr(request.session, "session_key", None)
        rows = [
            {
                "id": s.pk,
                "created_at": s.created_at,
                "last_activity": s.last_activity,
                "ip_address": s.ip_address,
                "user_agent": s.user_agent,
                "current": s.session_key == current,
            }
            for s in sessions.live_sessions(target)
        ]
        tokens = [
            {"token_key": t.token_key, "created": t.created, "expiry": t.expiry}
            for t in AuthToken.objects.filter(user=target).filter(Q(expiry__gt=timezone.now()) | Q(expiry__isnull=True))
        ]
        return Response({"user_id": target.pk, "sessions": SessionSerializer(rows, many=True).data, "tokens": tokens})

    @extend_schema(
        summary="End every session and API token of a user (force logout)",
        responses={
            200: inline_serializer(
                "SessionsEnded", {"sessions": serializers.IntegerField(), "tokens": serializers.IntegerField()}
            )
        },
    )
    def delete(self, request, user_id):
        from rest_framework.exceptions import NotFound

        target = self._target(request, user_id)
        own = target.pk == request.user.pk
        if not own and not account_selectors.can_manage_user(request.user, target):
            raise NotFound()
        keep = request.session.session_key if own and hasattr(request, "session") else None
        ended = sessions.end_for_user(
            target,
            reason="forced_logout" if not own else "own_other_sessions",
            actor=request.user,
            keep_session_key=keep,
        )
        return Response(ended)


# ---------------------------------------------------------------- break-glass
class BreakGlassSerializer(serializers.ModelSerializer):
    class Meta:
        model = BreakGlass
        fields = [
            "id",
            "user",
            "reason",
            "minutes",
            "requested_by",
            "requested_at",
            "approved_by",
            "approved_at",
            "expires_at",
        ]


class BreakGlassRequestApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(breakglass.CAPABILITY)]

    class BreakGlassRequestInputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField(min_value=1)
        reason = serializers.CharField(max_length=500)
        minutes = serializers.IntegerField(min_value=1)

    @extend_schema(
        summary="Request a break-glass bypass of the admin address allowlist for one user",
        request=BreakGlassRequestInputSerializer,
        responses={201: BreakGlassSerializer},
    )
    def post(self, request):
        from django.core.exceptions import ValidationError as DjangoValidationError
        from rest_framework.exceptions import ValidationError

        params = self.BreakGlassRequestInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        target = User.objects.filter(pk=params.validated_data["user_id"]).first()
        if target is None:
            raise ValidationError({"user_id": [_("No such user.")]})
        try:
            grant = breakglass.request_access(
                user=target,
                actor=request.user,
                reason=params.validated_data["reason"],
                minutes=params.validated_data["minutes"],
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(BreakGlassSerializer(grant).data, status=201)


class BreakGlassApproveApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(breakglass.CAPABILITY)]

    @extend_schema(
        summary="Approve a break-glass request (a second administrator)",
        request=None,
        responses={200: BreakGlassSerializer},
    )
    def post(self, request, grant_id):
        from django.core.exceptions import ValidationError as DjangoValidationError
        from rest_framework.exceptions import ValidationError

        grant = get_object_or_404(BreakGlass, pk=grant_id)
        try:
            grant = breakglass.approve(grant, approver=request.user)
        except DjangoValidationError as exc:
            raise ValidationError({"non_field_errors": exc.messages}) from None
        return Response(BreakGlassSerializer(grant).data)
