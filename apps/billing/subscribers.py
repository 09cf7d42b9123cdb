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
    """One INSERT ... ON CONFLICT DO NOTHING per event (and a read of the job when it finished): this runs in
    every outbound ERP dispatch, so it stays cheap."""
    from apps.jobs.models import Job

    from . import services

    data = event.payload
    tenant_id, job_id, seq = data["tenant_id"], data["job_id"], data["seq"]
    base = {
        "tenant_id": tenant_id,
        "occurred_at": dt.datetime.fromisoformat(data["updated_at"]),
        "source": "job.status.changed",
    }
    rows = []
    if _sent_to_the_erp(data):
        # Every job event the ERP app is handed is one outbound ERP message (the ERP subscribes to the same
        # event type with the same rule); retries and replays of its delivery are not messages of their own.
        rows.append(
            {
                **base,
                "metric": "erp_messages",
                "quantity": 1,
                "dimension": "outbound",
                "idempotency_key": f"erp:{job_id}:{seq}",
            }
        )
    if _processed(data):
        job = Job.objects.filter(public_id=job_id).values("model_type__code", "duration_ms").first()
        if job is not None:
            code = job["model_type__code"][:64]
            rows.append(
                {
                    **base,
                    "metric": "jobs_processed",
                    "quantity": 1,
                    "dimension": code,
                    "idempotency_key": f"job:{job_id}:processed",
                }
            )
            if job["duration_ms"]:
                hours = (Decimal(job["duration_ms"]) / MS_PER_HOUR).quantize(Decimal("0.0001"))
                rows.append(
                    {
                        **base,
                        "metric": "machine_hours",
                        "quantity": hours,
                        "dimension": code,
                        "idempotency_key": f"job:{job_id}:hours",
                    }
                )
    if rows:
        services.record_usage_batch(rows)


def _sent_to_the_erp(payload) -> bool:
    return payload.get("source") != "erp"  # the ERP app's own rule (apps/erp/subscribers.py)


def _processed(payload) -> bool:
    return payload.get("status") in PROCESSED and payload.get("from_status") != payload.get("status")


def _wanted(payload) -> bool:
    # Not the ERP's own progress updates: those are written to the outbox as published with no task queued
    # (the inbound hot path); a job the ERP reports finished is still a processed job.
    return _sent_to_the_erp(payload) or _processed(payload)


def _on_export_requested(event):
    """One export of one tenant, from the API or the panel; the export's id is the key (counted once)."""
    from . import services

    data = event.payload
    if data["tenant_id"] is None:  # an export across several tenants (a superuser's) is nobody's to bill
        return
    services.record_usage(
        data["tenant_id"], "exports", 1, key=f"export:{data['export_id']}", source="reporting",
        occurred_at=dt.datetime.fromisoformat(data["requested_at"]),
    )  # fmt: skip


def register():
    subscribe("job.status.changed", _on_job_status_changed, key="billing.usage", wants=_wanted)
    subscribe("report.export.requested", _on_export_requested, key="billing.exports")
