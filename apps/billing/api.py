"""GET /api/v1/billing/usage?tenant=&period=: a tenant's usage and cost for billing integration."""

import json

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import VerifiedSessionOrToken, capability

from . import report_formats, selectors
from .serializers import UsageQuerySerializer


class BillingUsageApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("billing.view_usage_report")]

    @extend_schema(
        summary="A tenant's usage and cost over a day, ISO week, month or quarter",
        parameters=[
            OpenApiParameter("tenant", str, required=True, description="tenant slug (one of yours)"),
            OpenApiParameter("period", str, required=True, description="2026-11, 2026-W47, 2026-11-05 or 2026-Q4"),
        ],
        responses={
            200: OpenApiResponse(description="Usage lines priced by the versions in force, totals, daily cost"),
            422: OpenApiResponse(description="A bad tenant or period (problem+json)"),
        },
    )
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params, context={"user": request.user})
        query.is_valid(raise_exception=True)
        report = selectors.cost_report(query.validated_data["tenant"], query.validated_data["period"])
        # Decimals as strings, exactly as the invoice computes them (no float rounding on the way).
        return Response(json.loads(report_formats.as_json(report)))
