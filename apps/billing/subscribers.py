"""Usage metering from the outbox: what billing listens to, registered from BillingConfig.ready().

Each subscriber writes usage events inside the outbox delivery's transaction with a key derived from the
event (job id + the job's event seq), so an event handed on twice (at-least-once) is counted once.
"""

import datetime as dt
from decimal import Decimal

from apps.events.registry import subscribe

MS_PER_HOUR = Decimal(3_600_000)
PROCESSED = ("succeeded", "failed")


def _on_job_status_changed(event):
    from apps.jobs.models import Job

    from . import services
    from .models import UsageMetric

    data = event.payload
    tenant_id, job_id, seq = data["tenant_id"], data["job_id"], data["seq"]
    at = dt.datetime.fromisoformat(data["updated_at"])
    if _sent_to_the_erp(data):
        # Every job event the ERP app is handed is one outbound ERP message (the ERP subscribes to the same
        # event type with the same rule); retries and replays of its delivery are not messages of their own.
        services.record_usage(
            tenant_id,
            UsageMetric.ERP_MESSAGES,
            1,
            key=f"erp:{job_id}:{seq}",
            occurred_at=at,
            dimension="outbound",
            source="job.status.changed",
        )
    if _processed(data):
        job = Job.objects.select_related("model_type").filter(public_id=job_id).first()
        if job is None:
            return
        code = job.model_type.code
        services.record_usage(
            tenant_id,
            UsageMetric.JOBS_PROCESSED,
            1,
            key=f"job:{job_id}:processed",
            occurred_at=at,
            dimension=code,
            source="job.status.changed",
        )
        if job.duration_ms:
            hours = (Decimal(job.duration_ms) / MS_PER_HOUR).quantize(Decimal("0.0001"))
            services.record_usage(
                tenant_id,
                UsageMetric.MACHINE_HOURS,
                hours,
                key=f"job:{job_id}:hours",
                occurred_at=at,
                dimension=code,
                source="job.status.changed",
            )


def _sent_to_the_erp(payload) -> bool:
    return payload["source"] != "erp"  # the ERP app's own rule (apps/erp/subscribers.py)


def _processed(payload) -> bool:
    return payload["status"] in PROCESSED and payload["from_status"] != payload["status"]


def _wanted(payload) -> bool:
    # Not the ERP's own progress updates: those are written to the outbox as published with no task queued
    # (the inbound hot path); a job the ERP reports finished is still a processed job.
    return _sent_to_the_erp(payload) or _processed(payload)


def register():
    subscribe("job.status.changed", _on_job_status_changed, key="billing.usage", wants=_wanted)
