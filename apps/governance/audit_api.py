"""Seed 001's audit endpoints under /api/enterprise/audit/: search (keyset paging over seq), verification of a
range, and the compliance report. Reads are tenant-scoped through apps.audit.selectors.entries_visible_to."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit import services as audit_services
from apps.audit import subject_keys
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.audit.selectors import entries_visible_to
from apps.core.permissions import VerifiedSessionOrToken, capability

from . import selectors

VIEW_AUDIT = "audit.view_auditlog"


class _Filters(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=150)
    actor = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(required=False, max_length=100)
    object_type = serializers.CharField(required=False, max_length=100)
    object_id = serializers.CharField(required=False, max_length=100)
    tenant = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
    start_date = serializers.DateTimeField(required=False)
    end_date = serializers.DateTimeField(required=False)
    after_seq = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)

    def validate(self, attrs):
        if attrs.get("start_date") and attrs.get("end_date") and attrs["start_date"] >= attrs["end_date"]:
            raise serializers.ValidationError({"end_date": [_("Must be after start_date.")]})
        return attrs


def _entry_json(row: AuditLog, keys: dict) -> dict:
    """The entry with its personal values decrypted where the subject's key stands ({"$erased": pseudonym} where
    it was destroyed); `record_sha256` still covers the stored (encrypted) payload."""
    return {
        "seq": row.seq, "ts": row.ts, "actor_type": row.actor_type, "actor_id": row.actor_id, "action": row.action,
        "object_type": row.object_type, "object_id": row.object_id,
        "payload": subject_keys.reveal(row.payload, cache=keys),
        "tenant_id": row.tenant_id, "request_id": row.request_id, "client_ip": row.client_ip,
        "record_sha256": row.record_sha256, "chain_hash": row.chain_hash,
    }  # fmt: skip


class AuditLogSearchApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_AUDIT)]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Search sealed audit entries (keyset paging: pass next_after_seq as after_seq)",
        parameters=[_Filters],
    )
    def get(self, request):
        params = _Filters(data=request.query_params)
        params.is_valid(raise_exception=True)
        f = params.validated_data
        qs = entries_visible_to(request.user).filter(seq__isnull=False)
        if "username" in f:
            user_id = get_user_model().objects.filter(username=f["username"]).values_list("pk", flat=True).first()
            qs = qs.filter(actor_type="user", actor_id=str(user_id)) if user_id else qs.none()
        for name, column in (("actor", "actor_id"), ("action", "action"), ("object_type", "object_type"),
                             ("object_id", "object_id"), ("tenant", "tenant_id")):  # fmt: skip
            if name in f:
                qs = qs.filter(**{column: f[name]})
        if "start_date" in f:
            qs = qs.filter(ts__gte=f["start_date"])
        if "end_date" in f:
            qs = qs.filter(ts__lt=f["end_date"])
        if "after_seq" in f:
            qs = qs.filter(seq__gt=f["after_seq"])
        rows, keys = list(qs.order_by("seq")[: f["limit"]]), {}
        more = len(rows) == f["limit"]
        return Response(
            {"results": [_entry_json(r, keys) for r in rows], "next_after_seq": rows[-1].seq if more else None}
        )


def _chain_report(from_seq=None) -> dict:
    try:
        key = audit_services.signing_key()
        witness = audit_services.held_witness()
    except ImproperlyConfigured as exc:
        # Not verified is the answer (never a pass): the key or the witness is missing or unusable.
        return {"ok": False, "checked": 0, "first_seq": None, "last_seq": None, "head_hash": None,
                "checkpoints_checked": 0, "problem": {"seq": None, "problem": f"cannot verify: {exc}"}}  # fmt: skip
    report = verify_database(from_seq=from_seq, public_key=key.public_key(), witness=witness)
    finding = report.finding
    return {
        "ok": report.ok, "checked": report.checked, "first_seq": report.first_seq, "last_seq": report.last_seq,
        "head_hash": report.head_hash, "checkpoints_checked": report.checkpoints_checked,
        "problem": None if finding is None else {"seq": finding.seq, "problem": finding.problem},
    }  # fmt: skip


class VerifyIntegrityApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_AUDIT)]

    class Params(serializers.Serializer):
        start_date = serializers.DateTimeField(required=False)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Verify the chain (from start_date on): the first problem, or the verified head",
        parameters=[Params],
    )
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        from_seq = None
        if "start_date" in params.validated_data:
            from_seq = (
                AuditLog.objects.filter(seq__isnull=False, ts__gte=params.validated_data["start_date"])
                .order_by("seq").values_list("seq", flat=True).first()
            )  # fmt: skip
            if from_seq is None:
                return Response({"ok": True, "checked": 0, "first_seq": None, "last_seq": None, "problem": None})
        return Response(_chain_report(from_seq))


class AuditComplianceReportApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_AUDIT)]

    class Params(serializers.Serializer):
        days = serializers.IntegerField(required=False, min_value=1, max_value=3650, default=30)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Audit compliance report over the last `days` days",
        parameters=[Params],
    )
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = selectors.audit_compliance_counts(request.user, days=params.validated_data["days"])
        report["verification"] = _chain_report()
        return Response(report)
