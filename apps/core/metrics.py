"""Prometheus exposition: counters from every process (multi-process files) plus scrape-time collectors.

Settings point PROMETHEUS_MULTIPROC_DIR at a folder every process (web, workers) writes its counters
to; apps add collectors that read shared state (the database) with `register_collector` in ready().
"""

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

_collectors = []


def register_collector(collector) -> None:
    if all(type(c) is not type(collector) for c in _collectors):
        _collectors.append(collector)


def metrics_view(request):
    """Every counter, for INTERNAL_TOKEN or INTERNAL_ALLOWED_IPS only (labels name ERP profiles): else 401."""
    from .internal_access import has_internal_access
    from .problems import problem_response

    if not has_internal_access(request):
        response = problem_response(
            status_code=401,
            slug="not-authenticated",
            title="Authentication is required",
            detail="Send Authorization: Bearer <INTERNAL_TOKEN>, or scrape from an address in INTERNAL_ALLOWED_IPS.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _collectors:
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
