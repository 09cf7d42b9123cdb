"""URLs of the observability app: the enterprise metrics API (config/urls.py includes it under /api/enterprise/)."""

from django.urls import path

from . import api

app_name = "enterprise"

urlpatterns = [
    path("metrics", api.EnterpriseMetricsApi.as_view(), name="metrics"),
    path("metrics/prometheus", api.EnterpriseMetricsPrometheusApi.as_view(), name="metrics-prometheus"),
    path("circuit-breakers", api.CircuitBreakersApi.as_view(), name="circuit-breakers"),
]
