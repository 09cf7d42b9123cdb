"""Scrape-time gauges of open reconciliation breaks per age bucket, read from the database (like the SIEM's): the
same figure whichever gunicorn worker answers /metrics, so alert rules can fire on old breaks."""

from prometheus_client.core import GaugeMetricFamily


class OpenBreaksCollector:
    def collect(self):
        from django.db import DatabaseError

        from . import selectors

        open_breaks = GaugeMetricFamily(
            "tezgah_recon_open_breaks", "Open reconciliation breaks per age bucket (days since first seen)",
            labels=["bucket"],
        )  # fmt: skip
        try:
            counts = selectors.open_bucket_counts()
        except DatabaseError:  # no database (yet): no figure rather than a failed scrape
            return
        for bucket, count in counts.items():
            open_breaks.add_metric([bucket], count)
        yield open_breaks
