"""Every write to a job. `change_status` is the one place a job's status changes."""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit import services as audit
from apps.events import services as events

from . import events as job_events
from .constants import ALLOWED_TRANSITIONS, PROGRESS_STATUSES, TERMINAL_STATUSES
from .exceptions import IllegalTransition, InvalidProgress, JobStatusError
from .models import Job, JobStatus, JobStatusChange, StatusSource


def _checked_progress(job, status, progress):
    if progress is None:
        return 100 if status == JobStatus.SUCCEEDED else job.progress
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise InvalidProgress(_("Progress must be a whole number from 0 to 100."), job=job, to_status=status)
    if status == JobStatus.SUCCEEDED and progress != 100:
        raise InvalidProgress(_("A succeeded job has progress 100."), job=job, to_status=status)
    return progress


def _emit_status_changed(job, from_status, *, actor, source, reason, at):
    """Outbox event for the change just written to the locked `job` (its event_seq already counted and
    saved with the change); call inside its transaction."""
    events.publish(
        job_events.JOB_STATUS_CHANGED,
        version=1,
        aggregate_type="jobs.job",
        aggregate_id=job.pk,
        aggregate_seq=job.event_seq,
        payload={
            "job_id": str(job.public_id),
            "external_id": job.external_id,
            "tenant_id": job.tenant_id,
            "from_status": str(from_status),
            "status": str(job.status),
            "progress": job.progress,
            "updated_at": at.isoformat(),
            "seq": job.event_seq,
            "source": str(source),
            "actor_id": str(actor.pk) if getattr(actor, "pk", None) else None,
            "reason": reason[:500],
        },
    )


def change_status(job, status, *, progress=None, actor=None, source=StatusSource.SYSTEM, reason="", at=None):
    """Move `job` to `status` (and/or set its progress), validating the transition; returns the fresh job.

    Writes the job, a JobStatusChange row, an audit entry and a `job.status.changed` outbox event in
    one transaction, with the job row locked so two concurrent changes are applied one after the
    other. The same status with a new progress is a progress update: it is accepted while running or
    paused, writes no history row and emits the event too (the ERP follows progress).
    Raises IllegalTransition or InvalidProgress; nothing is written then.
    """
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        return change_locked_status(locked, status, progress=progress, actor=actor, source=source, reason=reason, at=at)


def change_locked_status(locked, status, *, progress=None, actor=None, source=StatusSource.SYSTEM, reason="", at=None):
    """`change_status` for a job the caller has already row-locked (select_for_update) in its open transaction.

    Call inside that transaction; it writes the same rows as change_status, and an IllegalTransition or
    InvalidProgress (raised before any write) leaves the caller's transaction to roll back. For callers
    that must find and lock the job themselves anyway (ERP inbound), it saves a second lock and a savepoint.
    """
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("change_locked_status needs the transaction that locked the job")
    status = JobStatus(status)
    at = at or timezone.now()
    from_status = JobStatus(locked.status)
    new_progress = _checked_progress(locked, status, progress)
    if status == from_status:
        if status not in PROGRESS_STATUSES:
            raise IllegalTransition(
                job=locked, from_status=from_status, to_status=status, allowed=ALLOWED_TRANSITIONS[from_status]
            )
        if locked.progress != new_progress:
            locked.progress = new_progress
            locked.event_seq += 1
            locked.save(update_fields=["progress", "event_seq", "updated_at"])
            _emit_status_changed(locked, from_status, actor=actor, source=source, reason=reason, at=at)
        return locked
    allowed = ALLOWED_TRANSITIONS[from_status]
    if status not in allowed:
        raise IllegalTransition(job=locked, from_status=from_status, to_status=status, allowed=allowed)

    locked.status = status
    locked.progress = new_progress
    if status == JobStatus.RUNNING and locked.started_at is None:
        locked.started_at = at
    if status in TERMINAL_STATUSES:
        locked.finished_at = at
        if locked.started_at is not None:
            locked.duration_ms = max(0, int((at - locked.started_at).total_seconds() * 1000))
    locked.event_seq += 1
    locked.save(
        update_fields=["status", "progress", "started_at", "finished_at", "duration_ms", "event_seq", "updated_at"]
    )
    JobStatusChange.objects.create(
        job=locked,
        from_status=from_status,
        to_status=status,
        progress=new_progress,
        actor=actor,
        source=source,
        reason=reason[:500],
        changed_at=at,
    )
    audit.record(
        actor,
        "job.status.changed",
        locked,
        {"from": from_status, "to": status, "progress": new_progress, "source": source, "reason": reason[:500]},
    )
    _emit_status_changed(locked, from_status, actor=actor, source=source, reason=reason, at=at)
    return locked


@dataclass
class BulkCancelResult:
    cancelled: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (job, message) pairs


def cancel_jobs(jobs, *, actor, source=StatusSource.ADMIN_BULK, reason="") -> BulkCancelResult:
    """Cancel each job through change_status; each job in its own transaction, refusals reported."""
    result = BulkCancelResult()
    for job in jobs:
        try:
            result.cancelled.append(change_status(job, JobStatus.CANCELLED, actor=actor, source=source, reason=reason))
        except JobStatusError as exc:
            result.refused.append((job, str(exc.message)))
    with transaction.atomic():
        audit.record(
            actor,
            "job.bulk_cancel",
            None,
            {
                "cancelled": [j.pk for j in result.cancelled],
                "refused": [{"job": j.pk, "reason": msg} for j, msg in result.refused],
                "reason": reason[:500],
            },
            object_type="jobs.job",
        )
    return result


def cancel_preview(jobs) -> BulkCancelResult:
    """What cancel_jobs would do with `jobs` now, writing nothing: the jobs it would cancel, and the rest with
    the message change_status would refuse each with."""
    result = BulkCancelResult()
    for job in jobs:
        error = transition_error(job, JobStatus.CANCELLED)
        if error:
            result.refused.append((job, error))
        else:
            result.cancelled.append(job)
    return result


def validate_job_references(job) -> dict:
    """Field errors for catalog references that belong to another tenant (or a post of another machine)."""
    errors = {}
    for name in ("model_type", "machine", "post", "material", "template"):
        ref = getattr(job, name, None) if getattr(job, f"{name}_id", None) else None
        if ref is not None and ref.tenant_id != job.tenant_id:
            errors[name] = _("This belongs to another tenant.")
    if job.post_id and job.machine_id and "post" not in errors and job.post.machine_id != job.machine_id:
        errors["post"] = _("This post is not a workstation of the chosen machine.")
    return errors


REFERENCE_FIELDS = ("tenant", "external_id", "model_type", "machine", "post", "material", "template")


def update_job_references(job, *, actor=None):
    """Save `job`'s ERP id and catalog references (already set on it) after checking them; not its status."""
    from django.core.exceptions import ValidationError

    errors = validate_job_references(job)
    if errors:
        raise ValidationError(errors)
    job.save(update_fields=[*REFERENCE_FIELDS, "updated_at"])
    return job


def create_job(*, tenant, model_type, machine, post, material=None, template=None, external_id=None, actor=None):
    """Create a queued job after checking that every reference belongs to the job's tenant."""
    from django.core.exceptions import ValidationError

    job = Job(
        tenant=tenant,
        model_type=model_type,
        machine=machine,
        post=post,
        material=material,
        template=template,
        external_id=external_id or None,
    )
    errors = validate_job_references(job)
    if errors:
        raise ValidationError(errors)
    job.full_clean()
    job.save()
    return job


def transition_error(job, status, progress=None):
    """The message change_status would refuse with, or None; lets a form show it before saving."""
    status = JobStatus(status)
    try:
        _checked_progress(job, status, progress)
    except InvalidProgress as exc:
        return str(exc.message)
    from_status = JobStatus(job.status)
    if status == from_status and status in PROGRESS_STATUSES:
        return None
    if status not in ALLOWED_TRANSITIONS[from_status]:
        return str(
            IllegalTransition(
                job=job, from_status=from_status, to_status=status, allowed=ALLOWED_TRANSITIONS[from_status]
            )
        )
    return None
