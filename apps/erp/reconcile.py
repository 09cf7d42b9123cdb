"""The reconciler (unacknowledged messages) and the re-drive of an outage's dead letters once the breaker closes.

Re-exported by apps.erp.services; wake-ups go through services.enqueue_delivery (tests replace it).
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone

from . import profiles, services
from .dead_letters import replay
from .models import (
    DeadLetterCause,
    Direction,
    ErpOutboundDeadLetter,
    ErpSync,
    ErrorClass,
    IntegrationProfile,
    SyncStatus,
)
from .profiles import IN_FLIGHT, OUTAGE_CLASSES

logger = logging.getLogger(__name__)


def reconcile_outbound(*, now=None) -> dict:
    """Re-enqueue outbound rows unacknowledged after ERP_RECONCILE_AFTER_MINUTES, up to ERP_RECONCILE_MAX
    times; then mark them failed and put them in the DLQ, where operators see them.

    Only messages that were actually sent count as unacknowledged (issue 13): a message held by an open
    breaker, or waiting for an earlier message of its job (per-job order), is left alone, and one that was
    never attempted is re-enqueued but never dead-lettered. Dead-lettering those let later messages of the
    same job overtake them, and the re-drive then sent the older ones last.
    """
    from django.db.models import Exists, OuterRef
    from django.db.models.functions import Cast

    from apps.events.models import OutboxEvent, OutboxStatus

    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ERP_RECONCILE_AFTER_MINUTES)
    held_by_breaker = [
        p.pk for p in IntegrationProfile.objects.filter(enabled=True) if profiles.breaker(p).state().state != "closed"
    ]
    earlier_message = ErpSync.objects.filter(
        direction=Direction.OUTBOUND, job_id=OuterRef("job_id"), seq__lt=OuterRef("seq"), status__in=IN_FLIGHT
    )
    earlier_event = OutboxEvent.objects.filter(
        aggregate_type="jobs.job",
        aggregate_id=Cast(OuterRef("job_id"), output_field=models.CharField()),
        aggregate_seq__lt=OuterRef("seq"),
        status__in=[OutboxStatus.PENDING, OutboxStatus.PROCESSING],
    )
    stale = (
        ErpSync.objects.filter(
            direction=Direction.OUTBOUND,
            status__in=IN_FLIGHT,
            created_at__lt=cutoff,
            profile__enabled=True,
            profile__paused_at=None,
        )
        .exclude(status=SyncStatus.SENT, claimed_until__gte=now)
        .exclude(profile_id__in=held_by_breaker)
        .exclude(Exists(earlier_message))
        .exclude(Exists(earlier_event))
    )
    requeued, failed = [], []
    with transaction.atomic():
        for row in stale.select_for_update(skip_locked=True, of=("self",))[:1000]:
            if row.reconcile_count >= settings.ERP_RECONCILE_MAX and row.attempt_count > 0:
                row.error_class = row.error_class or ErrorClass.UNACKNOWLEDGED
                row.error_message = row.error_message or "not acknowledged by the ERP"
                services._dead_letter(row, DeadLetterCause.UNACKNOWLEDGED)
                row.save()
                failed.append(row.pk)
            else:
                if row.attempt_count > 0:
                    row.reconcile_count += 1  # never attempted: due again, but never "unacknowledged"
                row.status, row.next_attempt_at, row.claimed_until = SyncStatus.QUEUED, None, None
                row.save(update_fields=["reconcile_count", "status", "next_attempt_at", "claimed_until", "updated_at"])
                requeued.append(row.pk)
        transaction.on_commit(lambda: [services.enqueue_delivery(pk) for pk in requeued])
    if failed:
        logger.error("erp: %d messages never acknowledged, now in the DLQ", len(failed), extra={"alert": "erp.unacked"})
    return {"requeued": len(requeued), "failed": len(failed)}


def _redrive_key(profile_id) -> str:
    return f"erp:redrive:{profile_id}"


def note_outage_ended(breaker_name: str) -> None:
    """Remember that a profile's outage ended, so redrive_after_outage re-sends what it dead-lettered."""
    if not breaker_name.startswith("erp:"):
        return
    profile_id = breaker_name.split(":", 1)[1]
    horizon = sum(settings.ERP_RETRY_SCHEDULE) + settings.ERP_RECONCILE_AFTER_MINUTES * 60 * (
        settings.ERP_RECONCILE_MAX + 1
    )
    since = timezone.now() - timedelta(seconds=horizon)
    try:
        cache.add(_redrive_key(profile_id), since.timestamp(), timeout=24 * 3600)
    except Exception:  # the cache is down too: that outage's dead letters wait in the DLQ for a person
        logger.warning("erp: cache unreachable; the re-drive after %s's outage is left to an operator", breaker_name)


def superseded_dead_letters():
    from .selectors import superseded_dead_letter_q

    return superseded_dead_letter_q()


def redrive_after_outage(*, limit=None) -> int:
    """Replay DLQ entries an outage caused, for profiles whose breaker closed, at most ERP_REDRIVE_PER_MINUTE."""
    budget = limit if limit is not None else settings.ERP_REDRIVE_PER_MINUTE
    replayed = 0
    for profile in IntegrationProfile.objects.filter(enabled=True, paused_at__isnull=True):
        try:
            since = cache.get(_redrive_key(profile.pk))
        except Exception:  # the cache is down: nothing known to re-drive now (the DLQ keeps every entry)
            logger.warning("erp: cache unreachable; no re-drive this round")
            return replayed
        if since is None or budget <= 0:
            continue
        batch = budget
        entries = list(
            ErpOutboundDeadLetter.objects.filter(
                sync__profile=profile,
                closed_at__isnull=True,
                error_class__in=OUTAGE_CLASSES,
                created_at__gte=datetime.fromtimestamp(since, tz=UTC),
            )
            .exclude(superseded_dead_letters())  # left for a person: re-sending them would regress the job
            .select_related("sync")
            .order_by("created_at")[:batch]
        )
        if entries:
            replay(entries, actor=None, reason="automatic re-drive after the ERP outage ended")
            replayed += len(entries)
            budget -= len(entries)
        if len(entries) < batch:
            cache.delete(_redrive_key(profile.pk))  # nothing left from this outage
    return replayed
