"""GET /api/enterprise/metrics (per-tenant SLA, JSON), .../metrics/prometheus and /api/enterprise/circuit-breakers."""

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import VerifiedSessionOrToken, capability

from . import selectors
from .constants import WINDOWS

VIEW_STATS = "observability.view_requeststat"
VIEW_BREAKERS = "observability.view_circuit_breakers"

_PARAMS = [
    OpenApiParameter("window", OpenApiTypes.STR, enum=list(WINDOWS), description="Rolling window; default day"),
    OpenApiParameter("tenant", OpenApiTypes.STR, description="Tenant slug (one of yours); default: all of yours"),
    OpenApiParameter("view", OpenApiTypes.STR, description="One view (URL pattern name, e.g. v1:job-list)"),
]
_BAD_PARAMS = OpenApiResponse(description="Bad parameter (problem+json)")


class SlaQuerySerializer(serializers.Serializer):
    window = serializers.ChoiceField(choices=list(WINDOWS), default="day")
    tenant = serializers.SlugField(required=False, allow_blank=True, max_length=64)
    view = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def validate_tenant(self, value):
        from apps.accounts.selectors import tenants_for

        if not value:
            return None
        found = tenants_for(self.context["user"]).filter(slug=value).first()
        if found is None:
            raise serializers.ValidationError(_("No such tenant, or not one of yours."))
        return found


def _query(request) -> dict:
    query = SlaQuerySerializer(data=request.query_params, context={"user": request.user})
    query.is_valid(raise_exception=True)
    return query.validated_data


class EnterpriseMetricsApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_STATS)]

    @extend_schema(
        summary="Per-tenant SLA: latency P50/P95/P99, error rate, availability, throughput over a window",
        parameters=_PARAMS,
        responses={200: OpenApiTypes.OBJECT, 422: _BAD_PARAMS},
    )
    def get(self, request):
        params = _query(request)
        return Response(
            selectors.sla(request.user, window=params["window"], tenant=params.get("tenant"), view=params.get("view"))
        )


class _SlaCollector:
    """The SLA figures of every window as gauges, for a Prometheus (or OpenMetrics) scraper."""

    def __init__(self, user, tenant, view):
        self.user, self.tenant, self.view = user, tenant, view

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        families = {
            "latency": GaugeMetricFamily(
                "tezgah_sla_latency_seconds",
                "Request latency quantile over the window",
                labels=["tenant", "window", "quantile"],
            ),
            "error_rate": GaugeMetricFamily(
                "tezgah_sla_error_ratio", "Share of 5xx answers over the window", labels=["tenant", "window"]
            ),
            "availability": GaugeMetricFamily(
                "tezgah_sla_availability_ratio", "Share of non-5xx answers over the window", labels=["tenant", "window"]
            ),
            "throughput": GaugeMetricFamily(
                "tezgah_sla_throughput_rps", "Requests per second over the window", labels=["tenant", "window"]
            ),
            "requests": GaugeMetricFamily(
                "tezgah_sla_requests", "Requests answered over the window", labels=["tenant", "window"]
            ),
        }
        for window in WINDOWS:
            result = selectors.sla(self.user, window=window, tenant=self.tenant, view=self.view)
            rows = [("all", result["aggregate"])]
            rows += [((t["tenant"] or {}).get("slug") or "none", t) for t in result["tenants"]]
            for label, fig in rows:
                for quantile, name in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")):
                    value = fig["latency_ms"][name]
                    if value is not None:
                        families["latency"].add_metric([label, window, quantile], value / 1000)
                if fig["requests"]:
                    families["error_rate"].add_metric([label, window], fig["error_rate"])
                    families["availability"].add_metric([label, window], fig["availability"])
                families["throughput"].add_metric([label, window], fig["throughput_rps"])
                families["requests"].add_metric([label, window], fig["requests"])
        yield from families.values()


class _TextRenderer(BaseRenderer):
    """Lets a scraper that accepts only text/plain through content negotiation; problems still render as JSON."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else JSONRenderer().render(data)


class EnterpriseMetricsPrometheusApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_STATS)]
    renderer_classes = [JSONRenderer, _TextRenderer]

    @extend_schema(
        summary="Per-tenant SLA of every window in the Prometheus text format",
        parameters=_PARAMS[1:],
        responses={(200, "text/plain"): OpenApiTypes.STR, 422: _BAD_PARAMS},
    )
    def get(self, request):
        params = _query(request)
        registry = CollectorRegistry()
        registry.register(_SlaCollector(request.user, params.get("tenant"), params.get("view")))
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class CircuitBreakersApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability(VIEW_BREAKERS)]

    @extend_schema(
        summary="Every circuit breaker and its state (closed, open, half_open)", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request):
        return Response({"breakers": selectors.circuit_breakers()})
