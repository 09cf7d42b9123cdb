"""Prometheus metrics of inbound requests (every process, multi-process files) and scrape-time collectors."""

from prometheus_client import Counter, Histogram

from .constants import LATENCY_BUCKETS

REQUESTS = Counter(
    "tezgah_http_requests_total",
    "HTTP requests answered, by view (URL pattern name), method, status class and tenant",
    ["view", "method", "status", "tenant"],
)
REQUEST_SECONDS = Histogram(
    "tezgah_http_request_duration_seconds",
    "Time from the request reaching the middleware to its response, by view and tenant",
    ["view", "tenant"],
    buckets=LATENCY_BUCKETS,
)
STATS_FLUSHES = Counter(
    "tezgah_request_stats_flushed_rows_total", "Rows of stored request statistics written (upserts)"
)
STATS_FLUSH_ERRORS = Counter(
    "tezgah_request_stats_flush_errors_total", "Flushes of stored request statistics that failed (kept for retry)"
)


class AuditStateCollector:
    """The audit chain's sealing backlog and the age of its newest checkpoint, read from the database at scrape."""

    def collect(self):
        import time

        from prometheus_client.core import GaugeMetricFamily

        from apps.audit.models import AuditCheckpoint, AuditLog

        unsealed = AuditLog.objects.filter(seq__isnull=True).count()
        yield GaugeMetricFamily("tezgah_audit_unsealed_entries", "Audit entries not yet sealed", value=unsealed)
        newest = AuditCheckpoint.objects.order_by("-tree_size").values_list("ts", flat=True).first()
        # No checkpoint yet: NaN, so that an alert on the age neither fires nor stays silent by accident.
        age = time.time() - newest.timestamp() if newest else float("nan")
        yield GaugeMetricFamily(
            "tezgah_audit_checkpoint_age_seconds", "Seconds since the newest signed audit checkpoint", value=age
        )


class SiemStateCollector:
    """The SIEM feed's backlog age at scrape (registered only when apps.siem is installed): the ship lag."""

    names = ("tezgah_siem_backlog_age_seconds",)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from apps.siem.selectors import backlog_age_seconds

        yield GaugeMetricFamily(
            "tezgah_siem_backlog_age_seconds",
            "Age of the oldest record not yet accepted by the SIEM (0 when nothing waits)",
            value=backlog_age_seconds() or 0,
        )
