"""Seed 001's governance endpoints under /api/enterprise/governance/ (docs/governance.md)."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Tenant
from apps.accounts.selectors import can_access_tenant, sees_all_tenants
from apps.audit.services import record
from apps.core.permissions import VerifiedSessionOrToken, capability
from apps.core.problems import Problem

from . import registry, retention, selectors, services, subject_requests
from .models import DataSubjectRequest, HoldScope, LegalHold, RequestType


def _every_tenant(user):
    """Changes that reach every tenant (global policies, tenant-less holds) are for who sees every tenant."""
    if not sees_all_tenants(user):
        raise Problem(status_code=403, slug="every-tenant-needed", title=_("This change reaches every tenant"),
                      detail=_("Only an administrator of every tenant may make it."))  # fmt: skip


class InventoryApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.view_retentionpolicy")]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Data inventory: every model field's category and each model's retention policy",
    )
    def get(self, request):
        return Response(selectors.inventory_with_retention())


class RetentionPolicyApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.view_retentionpolicy")]

    class Input(serializers.Serializer):
        collection_name = serializers.ChoiceField(choices=registry.CLASS_CHOICES, required=False)
        data_class = serializers.ChoiceField(choices=registry.CLASS_CHOICES, required=False)
        retention_days = serializers.IntegerField(min_value=0, max_value=36500)
        archive_before_delete = serializers.BooleanField(required=False)
        description = serializers.CharField(max_length=500, required=False, allow_blank=True)

        def validate(self, attrs):
            name = attrs.get("data_class") or attrs.get("collection_name")
            if not name:
                raise serializers.ValidationError({"data_class": [_("Name the data class.")]})
            attrs["data_class"] = name
            return attrs

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Retention policies, one per data class")
    def get(self, request):
        return Response({"results": [selectors.policy_json(p) for p in selectors.policies().values()]})

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Set a data class's retention policy", request=Input)
    def post(self, request):
        if not request.user.has_perm("governance.change_retentionpolicy"):
            raise Problem(status_code=403, slug="permission-denied", title=_("Permission denied"))
        _every_tenant(request.user)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():
            policy = retention.policy_for(values["data_class"])
            before = selectors.policy_json(policy)
            policy.retention_days = values["retention_days"]
            if "archive_before_delete" in values:
                policy.archive_before_delete = values["archive_before_delete"]
            if "description" in values:
                policy.description = values["description"]
            policy.save()
            after = selectors.policy_json(policy)
            changed = {k: [before[k], after[k]] for k in ("retention_days", "archive_before_delete", "description")
                       if before[k] != after[k]}  # fmt: skip
            record(request.user, "governance.retention_policy.changed", policy, {"fields": changed})
        return Response(after)


class ApplyRetentionApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.apply_retention")]

    class Input(serializers.Serializer):
        dry_run = serializers.BooleanField(default=False)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT},
        summary="Apply the retention policies (dry_run: only count what would go)",
        request=Input,
    )
    def post(self, request):
        _every_tenant(request.user)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        counts = retention.dry_run()
        if data.validated_data["dry_run"]:
            return Response({"dry_run": True, "classes": counts})
        from .tasks import apply_retention

        transaction.on_commit(apply_retention.delay)
        return Response({"dry_run": False, "queued": True, "classes": counts}, status=202)


def _hold_json(hold: LegalHold) -> dict:
    return {
        "id": hold.pk, "scope": hold.scope, "tenant": hold.tenant_id, "subject_id": hold.subject_id or None,
        "object_type": hold.object_type or None, "reason": hold.reason, "placed_by": hold.placed_by_id,
        "placed_at": hold.placed_at, "active": hold.active, "lifted_at": hold.lifted_at,
        "lifted_by": hold.lifted_by_id, "lift_reason": hold.lift_reason or None,
    }  # fmt: skip


class LegalHoldListApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.view_legalhold")]

    class Input(serializers.Serializer):
        scope = serializers.ChoiceField(choices=HoldScope.choices)
        tenant = serializers.IntegerField(required=False, min_value=1)
        subject_id = serializers.CharField(required=False, max_length=64)
        object_type = serializers.ChoiceField(choices=sorted(registry.CLASSES), required=False)
        reason = serializers.CharField(max_length=500)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Legal holds the caller may see (standing ones first)")
    def get(self, request):
        holds = selectors.holds_visible_to(request.user).order_by("lifted_at", "-placed_at")[:500]
        return Response({"results": [_hold_json(h) for h in holds]})

    @extend_schema(
        responses={201: OpenApiTypes.OBJECT}, summary="Place a legal hold (audited; needs a reason)", request=Input
    )
    def post(self, request):
        if not request.user.has_perm("governance.add_legalhold"):
            raise Problem(status_code=403, slug="permission-denied", title=_("Permission denied"))
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        tenant = None
        if values["scope"] == HoldScope.TENANT:
            tenant = Tenant.objects.filter(pk=values.get("tenant") or 0).first()
            if tenant is None or not can_access_tenant(request.user, tenant):
                raise serializers.ValidationError({"tenant": [_("Name a tenant you work on.")]})
        else:
            _every_tenant(request.user)
        try:
            hold = services.place_hold(
                request.user, scope=values["scope"], reason=values["reason"], tenant=tenant,
                subject_id=values.get("subject_id", ""), object_type=values.get("object_type", ""),
            )  # fmt: skip
        except services.HoldError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(_hold_json(hold), status=201)


class LegalHoldLiftApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.change_legalhold")]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
        summary="Lift a legal hold (audited; needs a reason: JSON body or ?reason=)",
    )
    def delete(self, request, hold_id: int):
        hold = get_object_or_404(selectors.holds_visible_to(request.user), pk=hold_id)
        if hold.tenant_id is None:
            _every_tenant(request.user)
        reason = request.data.get("reason") if hasattr(request.data, "get") else None
        reason = reason or request.query_params.get("reason", "")
        if not isinstance(reason, str) or not reason.strip():
            raise serializers.ValidationError({"reason": [_("Say why the hold is lifted.")]})
        try:
            hold = services.lift_hold(hold, request.user, reason=reason[:500])
        except services.HoldError as exc:
            raise Problem(status_code=409, slug="hold-already-lifted", title=_("The hold was lifted already"),
                          detail=str(exc)) from None  # fmt: skip
        return Response(_hold_json(hold))


class GovernanceComplianceReportApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.view_retentionpolicy")]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Governance compliance report: retention, runs, holds, data subject requests",
    )
    def get(self, request):
        return Response(selectors.governance_report(request.user))


def _gdpr_mode():
    from django.conf import settings

    if not settings.GDPR_COMPLIANCE_MODE:
        raise Problem(status_code=403, slug="gdpr-mode-off", title=_("Data subject requests are turned off"),
                      detail=_("Set GDPR_COMPLIANCE_MODE to handle data subject requests."))  # fmt: skip


def _request_json(req) -> dict:
    return {
        "id": req.pk, "request_type": req.request_type, "subject_id": req.subject_id, "status": req.status,
        "created_at": req.created_at, "due_at": req.due_at, "overdue": req.status == "pending" and req.due_at <
        timezone.now(), "processed_at": req.processed_at, "result": req.result,
    }  # fmt: skip


def _subject_in_reach(user, subject_id):
    from django.contrib.auth import get_user_model

    from apps.accounts.selectors import can_manage_user

    target = get_user_model().objects.filter(pk=subject_id).first() if str(subject_id).isdigit() else None
    if target is None or not can_manage_user(user, target):
        raise serializers.ValidationError({"subject_id": [_("Name a user you manage.")]})


class DataRequestListApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.view_datasubjectrequest")]

    class Input(serializers.Serializer):
        request_type = serializers.ChoiceField(choices=RequestType.choices)
        subject_id = serializers.CharField(max_length=64)
        subject_email = serializers.EmailField(required=False, allow_blank=True)
        changes = serializers.DictField(child=serializers.CharField(max_length=254, allow_blank=True), required=False)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Data subject requests (pending ones first)")
    def get(self, request):
        _gdpr_mode()
        qs = DataSubjectRequest.objects.order_by("status", "due_at")
        if not sees_all_tenants(request.user):
            from apps.accounts.selectors import users_visible_to

            ids = [str(pk) for pk in users_visible_to(request.user).values_list("pk", flat=True)]
            qs = qs.filter(subject_id__in=ids)
        return Response({"results": [_request_json(r) for r in qs[:500]]})

    @extend_schema(responses={201: OpenApiTypes.OBJECT}, summary="Record a data subject request", request=Input)
    def post(self, request):
        _gdpr_mode()
        if not request.user.has_perm("governance.add_datasubjectrequest"):
            raise Problem(status_code=403, slug="permission-denied", title=_("Permission denied"))
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        _subject_in_reach(request.user, values["subject_id"])
        try:
            req = subject_requests.create_request(
                request.user, request_type=values["request_type"], subject_id=values["subject_id"],
                subject_email=values.get("subject_email", ""), changes=values.get("changes"),
            )  # fmt: skip
        except subject_requests.RequestError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(_request_json(req), status=201)


class DataRequestProcessApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("governance.process_datasubjectrequest")]

    class Input(serializers.Serializer):
        dry_run = serializers.BooleanField(default=False)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}, request=Input,
        summary="Process a data subject request (dry_run: list every row it reaches); refused under a legal hold",
    )  # fmt: skip
    def post(self, request, request_id: int):
        _gdpr_mode()
        req = get_object_or_404(DataSubjectRequest, pk=request_id)
        _subject_in_reach(request.user, req.subject_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = subject_requests.process(req, request.user, dry_run=data.validated_data["dry_run"])
        except subject_requests.RequestError as exc:
            raise Problem(status_code=409, slug="data-request-closed", title=_("The request is closed"),
                          detail=str(exc)) from None  # fmt: skip
        if result.get("refused"):
            raise Problem(
                status_code=409, slug="subject-under-legal-hold", title=_("The data subject is under a legal hold"),
                detail=_("Legal hold %(hold)s: %(reason)s") % {"hold": result["hold"], "reason": result["hold_reason"]},
                hold=result["hold"], dry_run=result["dry_run"],
            )  # fmt: skip
        return Response(result)
