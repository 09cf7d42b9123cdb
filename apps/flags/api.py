"""Seed 001's /api/enterprise/features endpoints. Reading one's own flags needs only a verified sign-in;
listing every flag needs flags.view_featureflag; changing them (they reach every tenant) the add / change /
delete capabilities, which only superusers hold. Errors are problem+json, bad fields 422 naming them."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.capabilities import ROLES
from apps.core.permissions import VerifiedSessionOrToken, capability

from . import services
from .models import FeatureFlag, State


class FlagOutSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    state = serializers.CharField()
    percentage = serializers.FloatField(allow_null=True)
    allowed_users = serializers.ListField(child=serializers.CharField())
    allowed_roles = serializers.ListField(child=serializers.CharField())
    superusers = serializers.BooleanField()
    modified = serializers.DateTimeField()


FlagOut = FlagOutSerializer


class FlagInputSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[a-z0-9_]{1,100}$", max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    state = serializers.ChoiceField(choices=State.choices, required=False)
    percentage = serializers.DecimalField(
        max_digits=3,
        decimal_places=1,
        min_value=Decimal("0"),
        max_value=Decimal("99.9"),
        required=False,
        allow_null=True,
    )
    allowed_users = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=1000)
    allowed_roles = serializers.ListField(child=serializers.ChoiceField(choices=ROLES), required=False, max_length=10)

    def validate_key(self, value):
        if self.instance is None and FeatureFlag.objects.filter(name=value).exists():
            raise serializers.ValidationError(_("A flag with this key exists."))
        return value

    def validate_allowed_users(self, value):
        known = set(get_user_model().objects.filter(username__in=value).values_list("username", flat=True))
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(_("Unknown users: %(names)s") % {"names": ", ".join(unknown)})
        return value


class FlagListApi(APIView):
    def get_permissions(self):
        name = "flags.add_featureflag" if self.request.method == "POST" else "flags.view_featureflag"
        return [VerifiedSessionOrToken(), capability(name)()]

    @extend_schema(summary="Every feature flag", operation_id="features_list", responses={200: FlagOut(many=True)})
    def get(self, request):
        flags = FeatureFlag.objects.prefetch_related("users", "groups").order_by("name")
        return Response([services.describe(f) for f in flags])

    @extend_schema(summary="Create a feature flag", request=FlagInputSerializer, responses={201: FlagOut})
    def post(self, request):
        params = FlagInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        flag = services.create(params.validated_data, actor=request.user)
        return Response(services.describe(flag), status=201)


class FlagsEnabledApi(APIView):
    permission_classes = [VerifiedSessionOrToken]

    @extend_schema(
        summary="The flags on for me",
        responses={200: inline_serializer("EnabledFlags", {"enabled": serializers.ListField()})},
    )
    def get(self, request):
        return Response({"enabled": services.enabled_for(request.user)})


class FlagDetailApi(APIView):
    def get_permissions(self):
        name = {"PATCH": "flags.change_featureflag", "DELETE": "flags.delete_featureflag"}.get(self.request.method)
        return [VerifiedSessionOrToken()] + ([capability(name)()] if name else [])

    @extend_schema(
        summary="Whether a flag is on for me",
        operation_id="features_check",
        responses={
            200: inline_serializer("FlagCheck", {"key": serializers.CharField(), "enabled": serializers.BooleanField()})
        },
    )
    def get(self, request, key):
        get_object_or_404(FeatureFlag, name=key)
        return Response({"key": key, "enabled": services.is_enabled(key, request.user)})

    @extend_schema(summary="Change a feature flag", request=FlagInputSerializer, responses={200: FlagOut})
    def patch(self, request, key):
        flag = get_object_or_404(FeatureFlag, name=key)
        params = FlagInputSerializer(flag, data={**request.data, "key": key}, partial=True)
        params.is_valid(raise_exception=True)
        data = {k: v for k, v in params.validated_data.items() if k != "key"}
        return Response(services.describe(services.update(flag, data, actor=request.user)))

    @extend_schema(summary="Delete a feature flag", responses={204: None})
    def delete(self, request, key):
        services.delete(get_object_or_404(FeatureFlag, name=key), actor=request.user)
        return Response(status=204)


class FlagStateApi(APIView):
    state = State.ENABLED

    def get_permissions(self):
        return [VerifiedSessionOrToken(), capability("flags.change_featureflag")()]

    @extend_schema(summary="Switch a feature flag on or off", request=None, responses={200: FlagOut})
    def post(self, request, key):
        flag = get_object_or_404(FeatureFlag, name=key)
        return Response(services.describe(services.set_state(flag, self.state, actor=request.user)))
