"""Operators' actions on outbound messages: replay from the DLQ (skipping superseded ones), requeue, resolve, ignore.

Re-exported by apps.erp.services; wake-ups go through services.enqueue_delivery (tests replace it).
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit

from . import services
from .models import Direction, ErpOutboundDeadLetter, ErpSync, SyncStatus


def _close_open_dead_letters(rows, closed_by: str, now) -> None:
    ErpOutboundDeadLetter.objects.filter(sync__in=rows, closed_at__isnull=True).update(
        closed_at=now, closed_by=closed_by
    )


@dataclass
class ReplayResult:
    replayed: list
    skipped: list  # (sync id, why)
    dry_run: bool


SUPERSEDED = "superseded by a later acknowledged message of the same job"


def replay(dead_letters, *, actor, dry_run=False, reason="", include_superseded=False) -> ReplayResult:
    """Send DLQ entries again: DLQ -> queued -> (acked); with dry_run only say what would be sent.

    Replays keep the message's Idempotency-Key and bytes; the retry budget starts afresh. Audited.
    A message whose job has a later message acknowledged already is skipped (the ERP would go back to a
    stale state): it is listed as superseded, and sent only with `include_superseded` (docs/erp.md).
    """
    from .selectors import latest_acked_seqs

    result = ReplayResult([], [], dry_run)
    entries = list(dead_letters)
    latest = latest_acked_seqs({e.sync.job_id for e in entries if e.is_open and e.sync.job_id is not None})
    for entry in entries:
        sync = entry.sync
        newer = latest.get(sync.job_id)
        if not entry.is_open:
            result.skipped.append((entry.sync_id, "closed"))
        elif not include_superseded and sync.seq is not None and newer is not None and newer > sync.seq:
            result.skipped.append((entry.sync_id, f"{SUPERSEDED} (seq {newer} after {sync.seq})"))
        else:
            result.replayed.append(entry.sync_id)
    if dry_run or not result.replayed:
        return result
    now = timezone.now()
    with transaction.atomic():
        rows = ErpSync.objects.filter(pk__in=result.replayed)
        _close_open_dead_letters(rows, "replayed", now)
        rows.update(status=SyncStatus.QUEUED, retry_count=0, reconcile_count=0, next_attempt_at=None, updated_at=now)
        for row in ErpSync.objects.filter(pk__in=result.replayed).only("pk", "tenant_id"):
            audit.record(actor, "erp.dlq.replayed", row, {"reason": reason[:500]}, tenant_id=row.tenant_id)
        ids = list(result.replayed)
        transaction.on_commit(lambda: [services.enqueue_delivery(pk) for pk in ids])
    return result


NOT_IN_DLQ = "not in the dead-letter queue"


def replay_matching(
    *, actor, user=None, sync_ids=None, dry_run=False, reason="", include_superseded=False, **filters
) -> ReplayResult:
    """Replay the open dead letters matching `sync_ids` and `filters` (since, until, error_class, cause), of
    the tenants `user` may work on (None: all); named ids that match none are listed as skipped."""
    from .selectors import dead_letters_for_replay

    entries = dead_letters_for_replay(sync_ids=sync_ids, user=user, **filters)
    result = replay(entries, actor=actor, dry_run=dry_run, reason=reason, include_superseded=include_superseded)
    found = set(result.replayed) | {pk for pk, _ in result.skipped}
    result.skipped += [(pk, NOT_IN_DLQ) for pk in sync_ids or [] if pk not in found]
    return result


def requeue(rows, *, actor) -> int:
    """Send failed (or stuck) outbound rows again now; closes their open DLQ entries."""
    now = timezone.now()
    with transaction.atomic():
        targets = list(
            ErpSync.objects.select_for_update()
            .filter(pk__in=[r.pk for r in rows], direction=Direction.OUTBOUND)
            .filter(status__in=[SyncStatus.FAILED, SyncStatus.QUEUED])
        )
        _close_open_dead_letters(targets, "replayed", now)
        ErpSync.objects.filter(pk__in=[r.pk for r in targets]).update(
            status=SyncStatus.QUEUED, retry_count=0, reconcile_count=0, next_attempt_at=None, updated_at=now
        )
        for row in targets:
            audit.record(actor, "erp.sync.requeued", row, {"from": row.status}, tenant_id=row.tenant_id)
        ids = [r.pk for r in targets]
        transaction.on_commit(lambda: [services.enqueue_delivery(pk) for pk in ids])
    return len(targets)


def close(rows, *, actor, status: str, note="") -> int:
    """Mark outbound rows resolved (handled outside the portal) or ignored; frees the job's later messages."""
    if status not in (SyncStatus.RESOLVED, SyncStatus.IGNORED):
        raise ValueError(f"close() marks messages resolved or ignored, not {status}")
    now = timezone.now()
    with transaction.atomic():
        targets = list(
            ErpSync.objects.select_for_update()
            .filter(pk__in=[r.pk for r in rows])
            .exclude(status__in=[SyncStatus.ACKED, SyncStatus.SENT, status])
        )
        _close_open_dead_letters(targets, str(status), now)
        ErpSync.objects.filter(pk__in=[r.pk for r in targets]).update(
            status=status, next_attempt_at=None, updated_at=now
        )
        for row in targets:
            audit.record(
                actor, f"erp.sync.{status}", row, {"from": row.status, "note": note[:500]}, tenant_id=row.tenant_id
            )
        for job_id in {r.job_id for r in targets}:
            services.release_next(job_id)
    return len(targets)
