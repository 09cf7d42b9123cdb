"""POST /api/v1/erp/inbound/job/progress: the ERP reports a job's status and progress."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import parsers
from apps.core.incident_lock import OP_ERP_INBOUND
from apps.core.problems import Problem
from apps.core.throttling import ProfileRateThrottle
from apps.jobs.models import JobStatus

from . import inbound_services as inbound
from . import services as erp_services


class JobProgressInputSerializer(serializers.Serializer):
    job_id = serializers.CharField(max_length=64, help_text=_("The job's ERP id, or its portal id (UUID)."))
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    ext_ts = serializers.DateTimeField(required=False, help_text=_("The ERP's time of the message (ISO 8601)."))
    correction = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("The ERP corrects the job: applied even when older than, or behind, what was applied before."),
    )


# One bound instance validates every message: DRF builds and binds the five field objects anew for each
# serializer instance, which cost four times the validation itself (docs/benchmarks.md, ERP inbound).
# run_validation keeps no state on the instance, so sharing it is safe.
_progress_input = JobProgressInputSerializer()


class JobProgressOkSerializer(serializers.Serializer):
    ok = serializers.BooleanField()


def _problem(description):
    # apps.core.openapi gives every described 4xx the Problem schema (application/problem+json).
    return OpenApiResponse(description=description)


class ErpInboundProgressApi(APIView):
    """Checks IP, bearer token, signature, then the body, in that order; applies once (inbound_services)."""

    # The ERP is no user: its bearer token and address are checked by the service, in the documented order.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []  # throttled per profile once the profile is known (below)
    parser_classes = [parsers.JSONParser]  # the signature covers the raw JSON bytes; nothing else is accepted
    emergency_op = OP_ERP_INBOUND
    # Idempotency-Key and X-Request-Id are deduped per integration profile by inbound_services, after the
    # profile is authenticated and in the transaction of the message's effects: core's generic claim would
    # run before this view knows the profile, and cost two more queries on the hot path.
    idempotent = False

    @extend_schema(
        operation_id="erp_inbound_job_progress",
        summary="ERP reports a job's status and progress",
        description=(
            "Bearer token of an enabled integration profile, from an address in the profile's IP allowlist "
            "(ERP_IP_ALLOWLIST by default). X-Signature, when sent (or when the profile requires it), is "
            "base64(HMAC-SHA256(key, raw body)) with the profile's current or next key; with "
            "X-Signature-Timestamp (Unix seconds) it covers `<timestamp>.<raw body>` and the timestamp must be "
            "within ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS of the server's time (401 signature-expired). Checks "
            "run in the order IP (403), token (401), signature (401), body (422). A message whose ext_ts is older "
            "than the last applied one, or that has no ext_ts once applied messages had one, is recorded and "
            "acknowledged but does not move the job; progress lower than the job's for the same status is 422 "
            "invalid-progress. `correction: true` applies either. The same X-Request-Id or Idempotency-Key "
            "again returns the first answer (the same Idempotency-Key with another body: 422)."
        ),
        auth=[{"erpBearer": []}],
        request=JobProgressInputSerializer,
        parameters=[
            OpenApiParameter("X-Signature", OpenApiTypes.STR, OpenApiParameter.HEADER, description="base64 HMAC"),
            OpenApiParameter(
                "X-Signature-Timestamp",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Unix seconds, signed with the body",
                pattern=r"^[0-9]{1,12}$",
            ),
            OpenApiParameter("X-Request-Id", OpenApiTypes.STR, OpenApiParameter.HEADER, description="8-128 chars"),
        ],
        responses={
            200: JobProgressOkSerializer,
            400: _problem("Malformed Idempotency-Key"),
            401: _problem(
                "Bad bearer token or signature (authentication-failed, invalid-signature, signature-expired)"
            ),
            403: _problem("The client address is not in the allowlist (ip-not-allowed)"),
            404: _problem("No such job for this profile (not-found)"),
            409: _problem("The job's state machine refuses the status (illegal-transition)"),
            422: _problem(
                "Body failed validation (validation-error with errors per field), progress refused "
                "(invalid-progress), Idempotency-Key reused with another body (idempotency-key-reused)"
            ),
            423: _problem("Incident lock on (unless INCIDENT_LOCK_ALLOW_ERP_INBOUND)"),
            429: _problem("Too many requests for this profile (THROTTLE_ERP_INBOUND_RATE)"),
        },
        examples=[
            OpenApiExample(
                "Progress",
                value={"job_id": "ERP-000123", "status": "running", "progress": 40, "ext_ts": "2026-11-23T05:00:00Z"},
                request_only=True,
            ),
            OpenApiExample("Acknowledged", value={"ok": True}, response_only=True, status_codes=["200"]),
        ],
    )
    def post(self, request):
        raw = request.body
        try:
            caller = inbound.authenticate(
                client_ip=request.client_ip,
                authorization=request.META.get("HTTP_AUTHORIZATION", ""),
                body=raw,
                signature=request.headers.get("X-Signature"),
                timestamp=request.headers.get("X-Signature-Timestamp"),
            )
            request.throttle_ident = caller.ident
            if caller.profile is not None and caller.profile.tenant_id:
                # Counted under the profile's tenant, not `none` (an ERP call has no user); set on the Django
                # request, which the metrics middleware reads (DRF's wrapper would keep the attribute itself).
                request._request.metrics_tenant = caller.profile.tenant
            throttle = ProfileRateThrottle()
            if not throttle.allow_request(request, self):
                self.throttled(request, throttle.wait())
            data = _progress_input.run_validation(_json_object(raw))
            sent_request_id = request.headers.get("X-Request-Id")
            outcome = inbound.apply_progress(
                caller,
                data,
                raw_body=raw,
                request_id=request.request_id if sent_request_id else None,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except inbound.InboundRefused as exc:
            if exc.status_code in (401, 403):
                erp_services.record_inbound_refusal(
                    status_code=exc.status_code, reason=exc.slug, client_ip=request.client_ip
                )
            raise Problem(
                status_code=exc.status_code, slug=exc.slug, title=exc.title, detail=exc.detail, **exc.extra
            ) from None
        response = Response(outcome.body, status=outcome.status_code)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        elif outcome.sync is not None and outcome.sync.tenant_id:
            # One inbound ERP message of the tenant, for usage metering (billing's middleware reads the Django
            # request, which DRF's wrapper does not write through to).
            request._request.metered_usage = (outcome.sync.tenant_id, "erp_messages", "inbound")
        return response


def _json_object(raw: bytes):
    """The body as JSON; anything unparseable is a schema error (422) like a bad field, per the ERP contract."""
    try:
        return parsers.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise serializers.ValidationError({"non_field_errors": [_("The body is not valid JSON.")]}) from None
