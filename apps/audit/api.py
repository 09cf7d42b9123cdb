import hashlib

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from apps.core.permissions import VerifiedSessionOrToken, capability

from . import selectors, services


class ExportFilterSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")
    date_from = serializers.DateTimeField(required=False)
    date_to = serializers.DateTimeField(required=False)
    actor = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(required=False, max_length=100)

    def to_internal_value(self, data):
        # DRF reads `?format=` (empty) as "not given", so the default applied where the schema allows only
        # json|csv (issue 11, contract): a parameter sent must have a value.
        empty = [name for name in self.fields if hasattr(data, "get") and data.get(name) == ""]
        if empty:
            blank = serializers.CharField.default_error_messages["blank"]
            raise serializers.ValidationError({name: [blank] for name in empty})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] >= attrs["date_to"]:
            raise serializers.ValidationError({"date_to": "Must be after date_from."})
        return attrs


class ForensicAuditExportApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("audit.view_auditlog")]

    @extend_schema(
        summary="Forensic export of the audit trail",
        description="Streams every sealed entry in seq order: matching entries in full, the others as hash "
        "stubs, then the signed checkpoints and an end line. `json` is JSON lines, which "
        "`python -m apps.audit.verify` checks offline. The export is itself audited with its sha256.",
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
            OpenApiParameter("date_from", OpenApiTypes.DATETIME),
            OpenApiParameter("date_to", OpenApiTypes.DATETIME),
            OpenApiParameter("actor", OpenApiTypes.STR),
            OpenApiParameter("action", OpenApiTypes.STR),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            403: OpenApiResponse(description="Missing audit.view_auditlog"),
            422: OpenApiResponse(description="Bad filter"),
        },
    )
    def get(self, request):
        params = ExportFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = {k: v for k, v in params.validated_data.items() if k != "format"}
        fmt = params.validated_data["format"]
        user = request.user

        def stream():
            digest = hashlib.sha256()
            lines = selectors.export_lines(filters, user=user)
            chunks = selectors.export_csv_rows(lines) if fmt == "csv" else (line + "\n" for line in lines)
            for chunk in chunks:
                data = chunk.encode()
                digest.update(data)
                yield data
            services.record(
                user,
                "audit.exported",
                None,
                {"filters": {k: str(v) for k, v in filters.items()}, "format": fmt, "sha256": digest.hexdigest(),
                 "via": "api", "scope": selectors.export_scope(user)},
                object_type="audit.auditlog",
            )  # fmt: skip

        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        response = StreamingHttpResponse(stream(), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="audit-export.{"csv" if fmt == "csv" else "jsonl"}"'
        return response
