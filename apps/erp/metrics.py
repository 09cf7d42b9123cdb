"""Prometheus metrics of ERP delivery; counters from every process, gauges read from the database at scrape."""

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter("tezgah_erp_delivery_attempts_total", "HTTP attempts to deliver outbound ERP messages", ["outcome"])
SUCCESSES = Counter("tezgah_erp_delivery_successes_total", "Outbound ERP messages acknowledged")
FAILURES = Counter("tezgah_erp_delivery_failures_total", "Failed outbound ERP attempts by class", ["error_class"])
RETRIES = Counter("tezgah_erp_delivery_retries_total", "Retries scheduled for outbound ERP messages")
DEAD_LETTERS = Counter("tezgah_erp_dead_letters_total", "Outbound ERP messages sent to the DLQ", ["cause"])
PROFILE_PAUSES = Counter("tezgah_erp_profile_pauses_total", "Profiles paused because the ERP refused our credentials")
PUBLISH_LATENCY = Histogram(
    "tezgah_erp_publish_latency_seconds",
    "From the job change's commit (event time) to the ERP's acknowledgement",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
REQUEST_SECONDS = Histogram(
    "tezgah_erp_request_seconds",
    "Duration of one HTTP attempt to the ERP",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ErpStateCollector:
    """Gauges that must agree across processes, so they are read from the database when scraped."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from . import selectors

        depths = selectors.depths()
        yield GaugeMetricFamily("tezgah_erp_dlq_size", "Open entries in the ERP dead-letter queue", value=depths["dlq"])
        yield GaugeMetricFamily(
            "tezgah_erp_queue_depth", "Outbound ERP messages waiting or in flight", value=depths["queue"]
        )
        yield GaugeMetricFamily(
            "tezgah_outbox_lag_seconds", "Age of the oldest event not yet handed on", value=selectors.outbox_lag()
        )
        breaker = GaugeMetricFamily(
            "tezgah_erp_breaker_open", "1 while the ERP circuit breaker is open", labels=["profile"]
        )
        for name, state in selectors.breaker_states().items():
            breaker.add_metric([name], 0 if state.state == "closed" else 1)
        yield breaker
