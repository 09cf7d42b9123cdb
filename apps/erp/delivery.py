"""Batch delivery to the ERP (issue 13): claim a batch in one statement, send it concurrently, record it in bulk.

One round of a worker:

1. **claim** (`claim_batch`): one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)
   RETURNING`` leases every due message whose job has nothing earlier still queued, in flight or not yet
   handed on by the outbox. Only a job's earliest unfinished message can qualify, so a batch holds at
   most one message per job, and two workers' batches are disjoint (SKIP LOCKED). Profiles that are
   paused, disabled or whose breaker is open are not claimed at all (their messages keep their retries);
   a half-open breaker lets one message through as the probe.
2. **send** (`send_batch`): the messages go out concurrently (ERP_DELIVERY_THREADS threads; they are of
   different jobs) over the process's kept-alive guarded session (apps/core/outbound_url.py). Keys are
   read once per profile per batch. When a profile's breaker would open during the batch, the messages
   of that profile not yet sent are held (given back, no attempt, no retry spent).
3. **record** (`record_batch`): acknowledgements in one UPDATE per response code, attempts in one bulk
   INSERT; retries, dead letters and pauses (rare) row by row, in the same transaction. Each write is
   guarded by the lease's request id, so a worker whose lease was taken over changes nothing.

A worker loops over rounds (`pump`) until nothing is due; an acknowledgement makes the job's next
message due, and the next round (or the wake-up it sends to another worker) claims it.
"""

import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import delivery_audit, metrics, services
from .models import (
    DeadLetterCause,
    ErpOutboundDeadLetter,
    ErpSync,
    ErpSyncAttempt,
    ErrorClass,
    IntegrationProfile,
    SyncStatus,
)

logger = logging.getLogger(__name__)

TRANSPORT = (ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.SERVER)
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.ERP_DELIVERY_THREADS, thread_name_prefix="erp-send")
        return _pool


def pumping() -> bool:
    """Whether this thread is inside a delivery loop (which claims again by itself)."""
    return getattr(_local, "pumping", False)


# ---------------------------------------------------------------- which profiles may send now


class Gate:
    """The profiles a claim may take messages of, read once per round: breaker states, keys, lease length."""

    def __init__(self):
        self.profiles: dict = {}
        self.open_ids: list = []  # breaker closed: any number of messages
        self.probe_ids: list = []  # breaker half-open and this caller won the probe: one message
        self.prior_failures: dict = {}
        self.held: dict = {}  # breaker open: profile id -> seconds until it may probe
        self.held_count = 0
        for profile in IntegrationProfile.objects.filter(enabled=True, paused_at__isnull=True):
            if not services.base_url(profile):
                continue
            circuit = services.breaker(profile)
            state = circuit.state()
            if state.state == "closed":
                self.open_ids.append(profile.pk)
            elif state.state == "half_open" and circuit.allow():
                self.probe_ids.append(profile.pk)
            else:
                # Held, not failed: due messages keep their retries and are due again when it may probe.
                self.held[profile.pk] = max(1.0, circuit.seconds_until_retry())
                self.profiles[profile.pk] = profile
                continue
            self.profiles[profile.pk] = profile
            self.prior_failures[profile.pk] = state.consecutive_failures

    def lease_seconds(self) -> float:
        longest = max((sum(services.timeouts(p)) for p in self.profiles.values()), default=0.0)
        return longest + 30


# ---------------------------------------------------------------- claim


def _request_id_sql() -> str:
    if connection.vendor == "postgresql":
        return "md5(random()::text || clock_timestamp()::text || erp_mes_sync.id::text)"
    return "lower(hex(randomblob(16)))"


_RETURNING = (
    "id",
    "job_id",
    "seq",
    "body",
    "idempotency_key",
    "profile_id",
    "tenant_id",
    "event_id",
    "created_at",
    "retry_count",
    "attempt_count",
    "request_id",
    "trace_context",
)


def claim_batch(*, limit: int, keys=None, handed_on_events=(), gate: Gate | None = None, now=None) -> list:
    """Lease up to `limit` due outbound messages in one statement (see the module's docstring).

    `keys` (idempotency keys) restricts the claim to those rows (the relay leasing what it just wrote);
    `handed_on_events` are outbox events handed on in the caller's transaction: they hold nothing back.
    """
    gate = gate or Gate()
    now = now or timezone.now()
    rows = []
    for profile_ids, cap in ((gate.open_ids, limit), *[([pk], 1) for pk in gate.probe_ids]):
        if profile_ids and cap > 0:
            rows += _claim(profile_ids, cap, keys, handed_on_events, gate, now)
    for pk, seconds in gate.held.items():
        gate.held_count += len(_claim([pk], limit, keys, handed_on_events, gate, now, hold_seconds=seconds))
    return rows


def _claim(profile_ids, limit, keys, handed_on_events, gate, now, hold_seconds=None) -> list:
    ops = connection.ops
    at = ops.adapt_datetimefield_value(now)
    if hold_seconds is None:
        until = ops.adapt_datetimefield_value(now + timedelta(seconds=gate.lease_seconds()))
        assign = [until, at, at]
        set_sql = f"""status = 'sent', claimed_until = %s, attempt_count = attempt_count + 1,
               last_attempt_at = %s, updated_at = %s, request_id = {_request_id_sql()}"""
    else:  # the breaker holds them: due again when it may probe; no attempt, no retry spent
        assign = [ops.adapt_datetimefield_value(now + timedelta(seconds=hold_seconds)), at]
        set_sql = "status = 'queued', claimed_until = NULL, next_attempt_at = %s, updated_at = %s"
    params: list = []

    def placeholders(values):
        params.extend(values)
        return ", ".join(["%s"] * len(values))

    where = [f"s.profile_id IN ({placeholders(profile_ids)})"]
    if keys is not None:
        if not keys:
            return []
        where.append(f"s.idempotency_key IN ({placeholders(keys)})")
    where.append(
        "((s.status = 'queued' AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= %s))"
        " OR (s.status = 'sent' AND s.claimed_until < %s))"
    )
    params += [at, at]
    outbox_exclude = ""
    if handed_on_events:
        values = [ops.adapt_unknown_value(e) if connection.vendor != "sqlite" else e.hex for e in handed_on_events]
        outbox_exclude = f" AND o.id NOT IN ({placeholders(values)})"
    lock = " FOR UPDATE OF s SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # Only fixed fragments of this module and %s placeholders are formatted in; every value is a parameter.
    sql = f"""
        UPDATE erp_mes_sync SET {set_sql}
        WHERE id IN (
            SELECT s.id FROM erp_mes_sync s
            WHERE s.direction = 'outbound' AND {" AND ".join(where)}
              AND NOT EXISTS (
                  SELECT 1 FROM erp_mes_sync e
                  WHERE e.job_id = s.job_id AND e.direction = 'outbound' AND e.seq < s.seq
                    AND e.status IN ('queued', 'sent'))
              AND NOT EXISTS (
                  SELECT 1 FROM event_outbox o
                  WHERE o.aggregate_type = 'jobs.job' AND o.aggregate_id = CAST(s.job_id AS TEXT)
                    AND o.aggregate_seq < s.seq AND o.status IN ('pending', 'processing'){outbox_exclude})
            ORDER BY s.id
            LIMIT %s{lock}
        )
        RETURNING {", ".join(_RETURNING)}
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*assign, *params, limit])
        found = cursor.fetchall()
    if hold_seconds is not None:
        return found
    rows = []
    for values in found:
        data = dict(zip(_RETURNING, values, strict=True))
        if isinstance(data["created_at"], str):
            data["created_at"] = parse_datetime(data["created_at"])
        data["created_at"] = _aware(data["created_at"])
        if isinstance(data["trace_context"], str):  # raw SQL: jsonb comes back as text
            data["trace_context"] = json.loads(data["trace_context"])
        if data["event_id"] is not None and not isinstance(data["event_id"], uuid.UUID):
            data["event_id"] = uuid.UUID(str(data["event_id"]))
        row = ErpSync(direction="outbound", status=SyncStatus.SENT, last_attempt_at=now, **data)
        row.profile = gate.profiles[row.profile_id]
        rows.append(row)
    rows.sort(key=lambda r: r.pk)
    return rows


def _aware(value):
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


# ---------------------------------------------------------------- send


def send_batch(rows: list, gate: Gate | None = None) -> list:
    """Send leased rows concurrently; returns (row, Response or None when held by the breaker) in row order."""
    if not rows:
        return []
    gate = gate or Gate()
    materials = {
        pk: services.signing_material(p) for pk, p in gate.profiles.items() if any(r.profile_id == pk for r in rows)
    }
    services.http()  # the process's session exists before the threads share it
    lock = threading.Lock()
    failures = defaultdict(int)
    held: set = set()

    def one(row):
        profile_id = row.profile_id
        if profile_id in held:
            return None
        response = services.send(row, materials.get(profile_id) or services.signing_material(row.profile))
        if response.error_class in TRANSPORT:
            with lock:
                failures[profile_id] += 1
                if gate.prior_failures.get(profile_id, 0) + failures[profile_id] >= settings.ERP_BREAKER_FAILURES:
                    held.add(profile_id)  # the breaker opens with this failure: send no more of this profile
        return response

    if len(rows) == 1 or settings.ERP_DELIVERY_THREADS <= 1:
        responses = [one(r) for r in rows]
    else:
        responses = list(_executor().map(one, rows))
    return list(zip(rows, responses, strict=True))


# ---------------------------------------------------------------- record


def _retry_or_dead(row, response):
    """(outcome, dead cause, delay) of a failed attempt, as services._record_outcome decides it."""
    if response.error_class in (ErrorClass.CREDENTIALS, ErrorClass.REFUSED):
        return "paused", None, None
    if response.error_class == ErrorClass.REJECTED:
        return "dead", DeadLetterCause.REJECTED, None
    if row.retry_count < len(settings.ERP_RETRY_SCHEDULE):
        return "retry", None, services.retry_delay(row.retry_count + 1, response.retry_after)
    return "dead", DeadLetterCause.EXHAUSTED, None


def record_batch(results: list) -> dict:
    """Write the outcomes of a sent batch in one transaction; returns {outcome: count}."""
    if not results:
        return {}
    now = timezone.now()
    outcomes: dict = defaultdict(int)
    attempts, dead_rows, paused, held = [], [], {}, []
    retry_delays = []
    acked_by_code = defaultdict(list)
    per_row = []  # (row, response, outcome, fields, cause)
    for row, response in results:
        if response is None:
            held.append(row)
        elif not response.error_class:
            acked_by_code[response.code].append((row, response))
        else:
            outcome, cause, delay = _retry_or_dead(row, response)
            fields = {
                "response_code": response.code,
                "error_class": response.error_class,
                "error_message": response.message,
                "claimed_until": None,
                "updated_at": now,
            }
            if outcome == "paused":
                fields.update(status=SyncStatus.QUEUED, next_attempt_at=None)
            elif outcome == "retry":
                fields.update(
                    status=SyncStatus.QUEUED,
                    next_attempt_at=now + timedelta(seconds=delay),
                    retry_count=row.retry_count + 1,
                )
            else:
                fields.update(status=SyncStatus.FAILED, next_attempt_at=None)
            per_row.append((row, response, outcome, fields, cause, delay))
    with transaction.atomic():
        for code, group in acked_by_code.items():
            request_ids = [row.request_id for row, _ in group]
            updated = ErpSync.objects.filter(status=SyncStatus.SENT, request_id__in=request_ids).update(
                status=SyncStatus.ACKED,
                acked_at=now,
                response_code=code,
                error_class="",
                error_message="",
                claimed_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
            owned = set(request_ids)
            if updated != len(group):  # some leases were taken over: their new owner's outcome stands
                owned = set(ErpSync.objects.filter(request_id__in=request_ids).values_list("request_id", flat=True))
            for row, response in group:
                outcome = "acked" if row.request_id in owned else "superseded"
                outcomes[outcome] += 1
                attempts.append(_attempt(row, response, outcome))
                if outcome == "acked":
                    metrics.PUBLISH_LATENCY.observe(max(0.0, (now - row.created_at).total_seconds()))
        for row, response, outcome, fields, cause, delay in per_row:
            owned = ErpSync.objects.filter(pk=row.pk, status=SyncStatus.SENT, request_id=row.request_id).update(
                **fields
            )
            if not owned:
                outcome = "superseded"
                logger.warning("erp: message %s was taken over while attempt %s ran", row.pk, row.attempt_count)
            elif outcome == "dead":
                for name, value in fields.items():
                    setattr(row, name, value)
                dead_rows.append((row, cause))
            elif outcome == "paused":
                paused.setdefault(row.profile_id, (row.profile, response.message))
            elif outcome == "retry":
                retry_delays.append(delay)
                if row.retry_count == 0:  # the message's first failure: audited once (docs/siem.md)
                    delivery_audit.first_failure(row, response)
            outcomes[outcome] += 1
            attempts.append(_attempt(row, response, outcome))
        if held:
            ErpSync.objects.filter(status=SyncStatus.SENT, request_id__in=[r.request_id for r in held]).update(
                status=SyncStatus.QUEUED,
                attempt_count=F("attempt_count") - 1,
                claimed_until=None,
                next_attempt_at=now + timedelta(seconds=1),
                updated_at=now,
            )
            outcomes["breaker-open"] += len(held)
        ErpSyncAttempt.objects.bulk_create(attempts)
        if dead_rows:
            ErpOutboundDeadLetter.objects.bulk_create(
                [
                    ErpOutboundDeadLetter(
                        sync=row,
                        cause=cause,
                        error_class=row.error_class,
                        response_code=row.response_code,
                        error_message=row.error_message,
                        attempts=row.attempt_count,
                    )
                    for row, cause in dead_rows
                ]
            )
            for row, cause in dead_rows:
                metrics.DEAD_LETTERS.labels(cause).inc()
                logger.warning("erp: message %s dead-lettered (%s, %s)", row.pk, cause, row.error_message)
                delivery_audit.dead_lettered(row, cause)
        for profile, reason in paused.values():
            services.pause_profile(profile, reason=reason)
        if (outcomes.get("acked") or dead_rows) and not pumping():
            transaction.on_commit(lambda: services.enqueue_delivery(None))  # the jobs' next messages are due now
        if retry_delays:
            soonest = min(retry_delays)
            transaction.on_commit(lambda: services.enqueue_delivery(None, countdown=soonest))
    _observe(results, outcomes)
    return dict(outcomes)


def _attempt(row, response, outcome) -> ErpSyncAttempt:
    return ErpSyncAttempt(
        sync_id=row.pk,
        number=row.attempt_count,
        request_id=row.request_id,
        started_at=row.last_attempt_at,
        duration_ms=response.duration_ms,
        response_code=response.code,
        outcome=outcome,
        error_class=response.error_class,
        error_message=response.message,
        response_excerpt=response.excerpt,
        signed_with=response.signed_with,
    )


def _observe(results, outcomes) -> None:
    """Metrics and the breaker, once per batch: the breaker sees the batch's failures after its last success."""
    for outcome, count in outcomes.items():
        if outcome != "breaker-open":
            metrics.ATTEMPTS.labels(outcome).inc(count)
    if outcomes.get("acked"):
        metrics.SUCCESSES.inc(outcomes["acked"])
    if outcomes.get("retry"):
        metrics.RETRIES.inc(outcomes["retry"])
    by_profile = defaultdict(list)
    for row, response in results:
        if response is None:
            continue
        if response.error_class:
            metrics.FAILURES.labels(response.error_class).inc()
        by_profile[row.profile_id].append((row.profile, response))
    for answers in by_profile.values():
        profile = answers[0][0]
        answered = [i for i, (_p, r) in enumerate(answers) if r.code is not None and r.error_class not in TRANSPORT]
        trailing = answers[answered[-1] + 1 :] if answered else answers
        circuit = services.breaker(profile)
        if answered:
            circuit.record_success()  # the ERP answered: it is up, whatever it thought of a message
        failures = sum(1 for _p, r in trailing if r.error_class in TRANSPORT)
        for _ in range(min(failures, settings.ERP_BREAKER_FAILURES + 1)):
            circuit.record_failure()


# ---------------------------------------------------------------- rounds


def deliver_batch(*, limit=None) -> dict:
    """One round: claim, send, record. Returns {outcome: count} ({} when nothing was due)."""
    gate = Gate()
    rows = claim_batch(limit=limit or settings.ERP_DELIVERY_BATCH, gate=gate)
    outcomes = record_batch(send_batch(rows, gate))
    if gate.held_count:
        outcomes["breaker-open"] = outcomes.get("breaker-open", 0) + gate.held_count
    return outcomes


def send_and_record(rows: list, gate: Gate) -> dict:
    """After the relay's commit: send what it leased and record it (a failure here leaves the leases to expire)."""
    try:
        outcomes = record_batch(send_batch(rows, gate))
    except Exception:  # the rows keep their leases and are taken over when they run out
        logger.exception("erp: sending a batch of %d messages failed; their leases will expire", len(rows))
        return {}
    if (outcomes.get("acked") or outcomes.get("dead")) and not pumping():
        # The jobs' next messages are due now: this worker sends them itself instead of waiting for a
        # wake-up that a busy pool would only take after its current loop. A few rounds, not a timed
        # loop: this runs inside the outbox relay's loop, and every second spent here is a second the
        # new commits wait to be handed on (with a 2 s loop, P95 commit -> receipt was 3.8 s at 89/s).
        for outcome, count in pump(max_rounds=settings.ERP_FOLLOW_UP_ROUNDS).items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return outcomes


def pump(*, budget_seconds=None, limit=None, max_messages=None, max_rounds=None) -> dict:
    """Rounds until nothing is due, the budget or max_rounds is spent (then another worker is woken) or
    max_messages sent."""
    budget = settings.ERP_PUMP_SECONDS if budget_seconds is None else budget_seconds
    stop_at = time.monotonic() + budget
    totals: dict = defaultdict(int)
    was_pumping, _local.pumping = pumping(), True
    rounds = 0
    try:
        while True:
            rounds += 1
            services.clear_delivery_kick()
            cap = limit or settings.ERP_DELIVERY_BATCH
            if max_messages is not None:
                cap = min(cap, max_messages - sum(totals.values()))
                if cap <= 0:
                    break
            outcomes = deliver_batch(limit=cap)
            for outcome, count in outcomes.items():
                totals[outcome] += count
            if not outcomes or set(outcomes) <= {"breaker-open"}:
                break
            if time.monotonic() > stop_at or (max_rounds is not None and rounds >= max_rounds):
                _local.pumping = was_pumping
                services.enqueue_delivery(None)
                break
    finally:
        _local.pumping = was_pumping
    return dict(totals)
