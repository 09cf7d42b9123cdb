"""ERP endpoints for operators: DLQ replay and the integration's health."""

from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.internal_access import has_internal_access
from apps.core.permissions import VerifiedSessionOrToken, capability

from . import selectors, services
from .models import DeadLetterCause, ErrorClass


class ErpReplayApi(APIView):
    """Replay dead-lettered outbound messages by id, or by time range and filter; `dry_run` only lists them."""

    permission_classes = [VerifiedSessionOrToken, capability("erp.replay_erpsync")]

    class InputSerializer(serializers.Serializer):
        sync_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=10000
        )
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        error_class = serializers.ChoiceField(choices=ErrorClass.choices, required=False)
        cause = serializers.ChoiceField(choices=DeadLetterCause.choices, required=False)
        dry_run = serializers.BooleanField(default=False)
        # Also send messages whose job has a later message acknowledged (skipped otherwise: docs/erp.md).
        include_superseded = serializers.BooleanField(default=False)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

        def validate(self, attrs):
            if not any(attrs.get(k) for k in ("sync_ids", "since", "until", "error_class", "cause")):
                raise serializers.ValidationError(
                    "Name the messages: sync_ids, or a filter (since, until, error_class, cause)."
                )
            if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
                raise serializers.ValidationError({"until": "until must be after since."})
            return attrs

    class OutputSerializer(serializers.Serializer):
        dry_run = serializers.BooleanField()
        replayed = serializers.ListField(child=serializers.IntegerField())
        skipped = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        summary="Replay ERP dead letters",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(description="Not signed in"),
            403: OpenApiResponse(description="Missing capability erp.replay_erpsync"),
            422: OpenApiResponse(description="No selection, or a bad filter"),
        },
        examples=[OpenApiExample("By id", value={"sync_ids": [41, 42]}, request_only=True)],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        result = services.replay_matching(
            actor=request.user,
            user=request.user,
            sync_ids=data.get("sync_ids"),
            since=data.get("since"),
            until=data.get("until"),
            error_class=data.get("error_class"),
            cause=data.get("cause"),
            dry_run=data["dry_run"],
            reason=data["reason"],
            include_superseded=data["include_superseded"],
        )
        skipped = [{"sync_id": pk, "why": why} for pk, why in result.skipped]
        return Response(
            self.OutputSerializer({"dry_run": result.dry_run, "replayed": result.replayed, "skipped": skipped}).data
        )


class ErpHealthApi(APIView):
    """GET /internal/erp/health: aggregates for anyone (monitoring); the per-profile list only with
    INTERNAL_TOKEN or from INTERNAL_ALLOWED_IPS. 503 with the same body when not ok."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="ERP integration health",
        responses={
            200: inline_serializer(
                "ErpHealth",
                {
                    "ok": serializers.BooleanField(),
                    "last_acked_at": serializers.DateTimeField(allow_null=True),
                    "failure_rate": serializers.FloatField(allow_null=True),
                    "breaker": serializers.CharField(),
                    "queue_depth": serializers.IntegerField(),
                    "dlq_depth": serializers.IntegerField(),
                    "outbox_lag_seconds": serializers.FloatField(),
                    "profiles_total": serializers.IntegerField(),
                    "profiles_unhealthy": serializers.IntegerField(),
                    "profiles": serializers.ListField(
                        child=serializers.DictField(),
                        required=False,
                        help_text="Only with Authorization: Bearer <INTERNAL_TOKEN> or from INTERNAL_ALLOWED_IPS",
                    ),
                },
            ),
            503: OpenApiResponse(description="Same body, with ok false"),
        },
    )
    def get(self, request):
        report = selectors.health(details=has_internal_access(request))
        response = Response(report, status=200 if report["ok"] else 503)
        add_never_cache_headers(response)
        return response
