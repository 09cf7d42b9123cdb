"""Request metrics: a count and a latency histogram per view and tenant in Prometheus, and the same figures
accumulated for the stored per-tenant SLA statistics (apps.observability.stats_buffer)."""

import time

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed

from . import metrics
from .constants import METHODS, UNRESOLVED_VIEW
from .stats_buffer import buffer
from .tenant_labels import tenant_of

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def view_label(request) -> str:
    """The URL pattern's name (namespaced, e.g. "v1:job-detail"), else its route: bounded by the URLconf."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        static_url = settings.STATIC_URL or "/static/"
        return "static" if request.path.startswith(static_url) else UNRESOLVED_VIEW
    return (match.view_name or match.route or UNRESOLVED_VIEW)[:200]


class RequestMetricsMiddleware:
    """Second outermost (after RequestContextMiddleware): it times everything inside, the other middleware too."""

    def __init__(self, get_response):
        if not settings.OBSERVABILITY_REQUEST_METRICS:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.store = settings.OBSERVABILITY_REQUEST_STATS

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        try:
            self._record(request, response.status_code, seconds)
        except Exception:  # metrics never turn an answer into an error
            import logging

            logging.getLogger(__name__).warning("Request metrics not recorded", exc_info=True)
        return response

    def _record(self, request, status: int, seconds: float) -> None:
        view = view_label(request)
        tenant, tenant_id = tenant_of(request)
        method = request.method if request.method in METHODS else "other"
        metrics.REQUESTS.labels(view, method, _STATUS_CLASSES.get(status // 100, "other"), tenant).inc()
        metrics.REQUEST_SECONDS.labels(view, tenant).observe(seconds)
        if self.store:
            buffer.add(at=time.time(), tenant_id=tenant_id, view=view, status=status, seconds=seconds)
            buffer.flush_if_due()
