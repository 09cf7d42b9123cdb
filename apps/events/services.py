"""The transactional outbox: `publish` inside the change's transaction, `relay` hands events on after commit."""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit import services as audit
from apps.core import request_context

from . import kick, registry
from .models import OutboxEvent, OutboxStatus

logger = logging.getLogger(__name__)


def publish(name, *, version, aggregate_type, aggregate_id, payload, aggregate_seq=None) -> OutboxEvent:
    """Write event `name` v`version` to the outbox; call inside the transaction that made the change.

    The payload is validated against the registered schema first (InvalidEventPayload, nothing written).
    After commit a task hands it to the subscribers; the relay sweep does so if that task never runs.
    An event no subscriber wants (registry.subscribe's `wants`) is written as published: kept in the
    outbox like any other, with no task to run and nothing held back behind it (per-aggregate order).
    """
    clean = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    registry.event_type(name, version).validate(clean)
    wanted = registry.wanted(name, clean)
    event = OutboxEvent.objects.create(
        event_type=name,
        event_version=version,
        payload=clean,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_seq=aggregate_seq,
        trace_context=request_context.trace_snapshot(),
        **({} if wanted else {"status": OutboxStatus.PUBLISHED, "processed_at": timezone.now()}),
    )
    if wanted:
        transaction.on_commit(lambda: enqueue_dispatch(event.pk))
    return event


RELAY_KICK = "outbox"


def enqueue_dispatch(event_id) -> None:
    """Wake a relay for a committed event: one pending wake-up at a time, fail-fast when the broker is down.

    A broker that is down loses nothing: the row stays pending for the sweep (apps/events/kick.py).
    """
    from . import tasks

    kick.kick(tasks.dispatch_event, key=RELAY_KICK, args=(str(event_id),))


def _due(now):
    return (
        Q(status=OutboxStatus.PENDING, next_attempt_at__isnull=True)
        | Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=OutboxStatus.PROCESSING, claimed_until__lt=now)
    )


def claim(*, event_ids=None, limit=100) -> list:
    """Take due events for this relay (SKIP LOCKED on PostgreSQL), leasing them for OUTBOX_CLAIM_SECONDS.

    Two relays never hold the same row: the row lock decides between them while they claim, and the
    lease keeps a claimed row out of every other relay's sweep until it expires.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = OutboxEvent.objects.select_for_update(skip_locked=True).filter(_due(now))
        if event_ids is not None:
            rows = rows.filter(pk__in=event_ids)
        ids = list(rows.order_by("created_at").values_list("pk", flat=True)[:limit])
        if ids:
            OutboxEvent.objects.filter(pk__in=ids).update(
                status=OutboxStatus.PROCESSING,
                claimed_until=now + timedelta(seconds=settings.OUTBOX_CLAIM_SECONDS),
                attempts=F("attempts") + 1,
            )
    return list(OutboxEvent.objects.filter(pk__in=ids).order_by("created_at"))


def deliver_to_subscribers(event: OutboxEvent) -> bool:
    """Run every subscriber of a claimed event in one transaction with marking it published.

    A subscriber that raises rolls the others back too; the event is retried with backoff and
    marked failed after OUTBOX_MAX_ATTEMPTS. Subscribers must be idempotent (at-least-once).
    """
    try:
        with transaction.atomic():
            _run_subscribers(event)
            done = OutboxEvent.objects.filter(pk=event.pk, status=OutboxStatus.PROCESSING).update(
                status=OutboxStatus.PUBLISHED, processed_at=timezone.now(), claimed_until=None, last_error=""
            )
        return bool(done)
    except Exception as exc:  # any subscriber failure is recorded on the row, never lost
        _record_failure(event.pk, event.attempts, exc)
        return False


def dispatch_one(event_id) -> bool:
    """Hand one due event on in a single transaction: lock it (SKIP LOCKED), run its subscribers, publish it.

    The after-commit path for a fresh event: no lease is needed because the row lock is held throughout
    (a relay that dies rolls back and the event stays due for the sweep), and it costs one transaction
    instead of a claim and then a delivery.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            event = OutboxEvent.objects.select_for_update(skip_locked=True).filter(_due(now), pk=event_id).first()
            if event is None:
                return False  # published already, or another relay holds it
            event.attempts += 1
            _run_subscribers(event)
            OutboxEvent.objects.filter(pk=event.pk).update(
                status=OutboxStatus.PUBLISHED,
                attempts=event.attempts,
                processed_at=now,
                claimed_until=None,
                last_error="",
            )
        return True
    except Exception as exc:  # recorded on the row in a transaction of its own, after the rollback
        attempts = OutboxEvent.objects.filter(pk=event_id).values_list("attempts", flat=True).first() or 0
        _record_failure(event_id, attempts + 1, exc)
        return False


def _run_subscribers(event: OutboxEvent) -> None:
    for _key, handler in registry.subscribers(event.event_type, event.payload):
        handler(event)


def _record_failure(event_id, attempts: int, exc: Exception) -> None:
    logger.error("outbox: subscribers of %s failed", event_id, exc_info=exc)
    give_up = attempts >= settings.OUTBOX_MAX_ATTEMPTS
    backoff = min(settings.OUTBOX_RETRY_MAX_SECONDS, 2**attempts)
    OutboxEvent.objects.filter(pk=event_id).update(
        status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
        attempts=attempts,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        next_attempt_at=None if give_up else timezone.now() + timedelta(seconds=backoff),
        claimed_until=None,
    )


def relay(*, event_ids=None, limit=500) -> int:
    """Claim due events and hand them to their subscribers as one batch; returns how many were published."""
    return deliver_batch(claim(event_ids=event_ids, limit=limit))


def deliver_batch(events: list) -> int:
    """Hand a claimed batch on in one transaction; batch subscribers get all their events at once.

    A plain subscriber runs per event inside a savepoint: one that raises rolls back only its event (all
    of that event's subscribers), which is retried with backoff. If a batch subscriber raises, the whole
    batch rolls back and each event is handed on alone (deliver_to_subscribers), so one bad event cannot
    hold the others back.
    """
    if not events:
        return 0
    failed: dict = {}
    try:
        with transaction.atomic():
            batches: dict = {}
            handed_on = []
            for event in events:
                entries = registry.batch_subscribers(event.event_type, event.payload)
                plain = [h for _k, h, b in entries if b is None]
                try:
                    if plain:
                        with transaction.atomic():
                            for handler in plain:
                                handler(event)
                except Exception as exc:  # this event only; recorded after the batch commits
                    failed[event.pk] = (event.attempts, exc)
                    continue
                for key, _h, batch in entries:
                    if batch is not None:
                        batches.setdefault(key, (batch, []))[1].append(event)
                handed_on.append(event.pk)
            for batch, batch_events in batches.values():
                batch(batch_events)
            done = OutboxEvent.objects.filter(pk__in=handed_on, status=OutboxStatus.PROCESSING).update(
                status=OutboxStatus.PUBLISHED, processed_at=timezone.now(), claimed_until=None, last_error=""
            )
    except Exception:  # a batch subscriber failed: hand each event on alone
        logger.warning("outbox: a batch of %d events failed; handing them on one by one", len(events), exc_info=True)
        return sum(deliver_to_subscribers(e) for e in events)
    for event_id, (attempts, exc) in failed.items():
        _record_failure(event_id, attempts, exc)
    return done


def relay_pump(*, budget_seconds=None, limit=None) -> int:
    """The worker's relay loop: hand on batches of due events until none is left (or the budget is spent).

    Each round first clears the wake-up flag, so a commit during the round sends a new wake-up or is seen
    by the next claim. When the budget runs out with work left it wakes another relay and returns, so a
    worker is never held by one task for long.
    """
    import time

    budget = settings.OUTBOX_PUMP_SECONDS if budget_seconds is None else budget_seconds
    limit = limit or settings.OUTBOX_RELAY_BATCH
    stop_at = time.monotonic() + budget
    total = 0
    while True:
        kick.clear(RELAY_KICK)
        published = relay(limit=limit)
        total += published
        if not published:
            return total
        if time.monotonic() > stop_at:
            enqueue_dispatch("pump")
            return total


def requeue_failed(events, *, actor=None) -> int:
    """Put failed events back to pending (the admin's retry action); audited."""
    ids = [e.pk for e in events]
    with transaction.atomic():
        failed = list(OutboxEvent.objects.filter(pk__in=ids, status=OutboxStatus.FAILED).values_list("pk", flat=True))
        OutboxEvent.objects.filter(pk__in=failed).update(status=OutboxStatus.PENDING, next_attempt_at=None, attempts=0)
        audit.record(
            actor, "outbox.requeued", None, {"events": [str(pk) for pk in failed]}, object_type="events.outboxevent"
        )
        transaction.on_commit(lambda: [enqueue_dispatch(pk) for pk in failed])
    return len(failed)
