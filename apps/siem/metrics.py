"""Scrape-time gauges of the SIEM backlog, read from the database: the same figure whichever process answers
/metrics (no per-process gauge files to merge, so safe under gunicorn's multi-process mode)."""

from prometheus_client.core import GaugeMetricFamily


class BacklogCollector:
    def collect(self):
        from django.db import DatabaseError

        from . import selectors

        size = GaugeMetricFamily(
            "tezgah_siem_backlog_records", "Records the SIEM has not accepted yet", labels=["destination"]
        )
        lag = GaugeMetricFamily(
            "tezgah_siem_ship_lag_seconds", "Age of the oldest record the SIEM has not accepted", labels=["destination"]
        )
        try:
            endpoint = selectors._endpoint_name()
            if endpoint:
                size.add_metric([endpoint], selectors.backlog_count(endpoint))
                lag.add_metric([endpoint], selectors.backlog_age_seconds(endpoint))
        except DatabaseError:
            return
        yield size
        yield lag
