"""Prometheus metrics of report exports (issue 15): time waiting in the queue and time writing the file."""

import time

from prometheus_client import Histogram

_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
EXPORT_QUEUE_SECONDS = Histogram(
    "tezgah_report_export_queue_seconds",
    "From an export's request to a worker starting it",
    ["format"],
    buckets=_BUCKETS,
)
EXPORT_SECONDS = Histogram(
    "tezgah_report_export_duration_seconds",
    "Time a worker spent writing one export, by format and outcome",
    ["format", "outcome"],
    buckets=_BUCKETS,
)


def observe_export(export_id, started: float) -> None:
    """Record one run of the export task that started at `started` (time.time()), done or failed; a run that
    found the export already finished (a redelivery) is not counted."""
    from .models import ReportExport

    export = ReportExport.objects.filter(pk=export_id).only("format", "status", "created_at", "finished_at").first()
    if export is None or export.finished_at is None or export.finished_at.timestamp() < started - 1:
        return
    EXPORT_QUEUE_SECONDS.labels(export.format).observe(max(0.0, started - export.created_at.timestamp()))
    EXPORT_SECONDS.labels(export.format, export.status).observe(max(0.0, time.time() - started))
