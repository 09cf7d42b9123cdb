"""Outbound delivery to the ERP: a sync row per job event, signed attempts, the retry schedule, the DLQ.

Every state change of an outbound row happens here. A row is claimed (queued -> sent, leased) in one
short transaction, the HTTP call runs outside any transaction, and its outcome is written in another.
"""

import email.utils
import hashlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import services as audit
from apps.core import outbound_url, request_context
from apps.events import selectors as event_selectors
from apps.jobs.models import Job

from . import delivery_audit, keyring, metrics, signing
from .models import (
    DeadLetterCause,
    Direction,
    ErpKey,
    ErpOutboundDeadLetter,
    ErpSync,
    ErpSyncAttempt,
    ErrorClass,
    IntegrationProfile,
    KeyState,
    SyncStatus,
)

# Re-exported: callers and tests use apps.erp.services.<name> for these.
from .profiles import (  # noqa: F401
    HEALTH_PATH,
    IN_FLIGHT,
    OUTAGE_CLASSES,
    UPDATE_PATH,
    base_url,
    breaker,
    default_profile,
    http,
    profile_for_tenant,
    timeouts,
)

logger = logging.getLogger(__name__)


def pause_profile(profile, *, reason: str) -> None:
    """Stop deliveries of `profile` until someone fixes its credentials and resumes it; alerts once."""
    updated = IntegrationProfile.objects.filter(pk=profile.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), pause_reason=reason[:500]
    )
    if updated:
        metrics.PROFILE_PAUSES.inc()
        logger.error("ERP profile %s paused: %s", profile, reason, extra={"alert": "erp.profile.paused"})
        audit.record(None, "erp.profile.paused", profile, {"reason": reason[:500]}, tenant_id=profile.tenant_id)


def resume_profile(profile, *, actor) -> int:
    """Lift a pause and send what waited; returns how many messages were waiting."""
    with transaction.atomic():
        IntegrationProfile.objects.filter(pk=profile.pk).update(paused_at=None, pause_reason="")
        audit.record(actor, "erp.profile.resumed", profile, {}, tenant_id=profile.tenant_id)
        waiting = list(
            ErpSync.objects.filter(profile=profile, direction=Direction.OUTBOUND, status=SyncStatus.QUEUED)
            .order_by("job_id", "seq")
            .values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: [enqueue_delivery(pk) for pk in waiting])
    return len(waiting)


def replace_key(profile, secret: str, *, state: str, actor) -> ErpKey:
    """Make `secret` the profile's current or next key, retiring the one it replaces; audited (not the secret)."""
    now = timezone.now()
    with transaction.atomic():
        retired = list(ErpKey.objects.filter(profile=profile, state=state).values_list("fingerprint", flat=True))
        ErpKey.objects.filter(profile=profile, state=state).update(state=KeyState.RETIRED, retired_at=now)
        key = keyring.add_key(profile, secret, state=state)
        if state == KeyState.CURRENT:
            ErpKey.objects.filter(pk=key.pk).update(activated_at=now)
        audit.record(
            actor,
            "erp.key.replaced",
            profile,
            {"state": state, "fingerprint": key.fingerprint, "retired": retired},
            tenant_id=profile.tenant_id,
        )
    return key


# ---------------------------------------------------------------- from event to sync row


def encode_body(body: dict) -> str:
    """The one JSON form sent to the ERP: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _outbound_row(event, profile) -> ErpSync:
    data = event.payload
    body = {
        "job_id": data["external_id"] or data["job_id"],
        "status": data["status"],
        "progress": data["progress"],
        "updated_at": data["updated_at"],
        "meta": {
            "seq": data["seq"],
            "event_id": str(event.pk),
            "event_type": event.event_type,
            "event_version": event.event_version,
            "portal_job_id": data["job_id"],
            "from_status": data["from_status"],
        },
    }
    text = encode_body(body)
    now = timezone.now()
    return ErpSync(
        direction=Direction.OUTBOUND,
        idempotency_key=str(event.pk),
        profile=profile,
        tenant_id=data["tenant_id"],
        job_id=int(event.aggregate_id),
        external_id=data["external_id"] or "",
        event_id=event.pk,
        seq=data["seq"],
        request_body=body,
        body=text,
        body_sha256=hashlib.sha256(text.encode()).hexdigest(),
        created_at=event.created_at,
        updated_at=now,
        trace_context=event.trace_context or {},
    )


def record_outbound_batch(events) -> list:
    """The outbound rows of a batch of `job.status.changed` events (batch subscriber; idempotent on the event id).

    Runs in the relay's transaction: one INSERT for the batch (a redelivered event keeps its row), then one
    claim leases the new rows that may go now; they are sent right after commit by this worker, which saves
    a claim transaction and a broker round trip per event. Without an enabled profile nothing is sent.
    Changes the ERP itself made never get here (the subscription's `wants`, apps/erp/subscribers.py).
    """
    profiles: dict = {}
    new = []
    for event in events:
        tenant_id = event.payload["tenant_id"]
        if tenant_id not in profiles:
            profiles[tenant_id] = profile_for_tenant(tenant_id)
        profile = profiles[tenant_id]
        if profile is None or not profile.enabled or not base_url(profile):
            continue
        new.append(_outbound_row(event, profile))
    if not new:
        return []
    ErpSync.objects.bulk_create(new, ignore_conflicts=True)
    keys = [row.idempotency_key for row in new]
    from . import delivery

    gate = delivery.Gate()
    leased = _lease_batch(keys, [e.pk for e in events], gate)
    if leased:
        transaction.on_commit(lambda: delivery.send_and_record(leased, gate))
    return keys


def _lease_batch(keys, handed_on_events, gate) -> list:
    from . import delivery

    return delivery.claim_batch(limit=len(keys), keys=keys, handed_on_events=handed_on_events, gate=gate)


def record_outbound(event) -> ErpSync | None:
    """The outbound row for one `job.status.changed` event (record_outbound_batch of one)."""
    if not record_outbound_batch([event]):
        return None
    return ErpSync.objects.filter(direction=Direction.OUTBOUND, idempotency_key=str(event.pk)).first()


DELIVERY_KICK = "erp.delivery"


def enqueue_delivery(sync_id=None, *, countdown: float | None = None) -> None:
    """Wake a delivery loop (at most one pending wake-up; `countdown`: a timed one for a retry).

    A broker that is down loses nothing: the rows stay due and the deliver_due sweep sends them.
    """
    from django.conf import settings as live

    from apps.events import kick

    from . import delivery, tasks

    if delivery.pumping() and live.CELERY_TASK_ALWAYS_EAGER and countdown is None:
        return  # eager (tests): the loop this runs in claims again by itself
    kick.kick(tasks.deliver_outbound, key=DELIVERY_KICK, args=(sync_id,), countdown=countdown)


def clear_delivery_kick() -> None:
    from apps.events import kick

    kick.clear(DELIVERY_KICK)


# ---------------------------------------------------------------- one attempt


def _due(now) -> Q:
    waiting = Q(status=SyncStatus.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    abandoned = Q(status=SyncStatus.SENT, claimed_until__lt=now)  # its worker died mid-attempt
    return waiting | abandoned


def _lock_job(job_id) -> None:
    """Serialise "hold this message for an earlier one" with "the earlier one is done, kick the next".

    Both take the job's row lock inside their transaction, so a message is either held by a transaction
    that commits before the releasing one looks for it, or sees the earlier message already done.
    """
    Job.objects.select_for_update().filter(pk=job_id).values_list("pk", flat=True).first()


def waits_for_earlier(row: ErpSync) -> bool:
    """Whether an earlier message of the same job has still to reach the ERP (per-job order)."""
    if row.job_id is None or row.seq is None or row.seq == 1:
        return False  # a job's first event has nothing before it
    _lock_job(row.job_id)
    earlier_rows = ErpSync.objects.filter(
        direction=Direction.OUTBOUND, job_id=row.job_id, seq__lt=row.seq, status__in=IN_FLIGHT
    ).exists()
    return earlier_rows or event_selectors.earlier_unpublished_exists("jobs.job", row.job_id, row.seq)


@dataclass
class Claim:
    row: ErpSync | None
    reason: str


def claim(sync_id) -> Claim:
    """Lease a due outbound row for one attempt, or say why not (not due, order, paused, breaker)."""
    now = timezone.now()
    with transaction.atomic():
        row = (
            ErpSync.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("profile")
            .filter(_due(now), pk=sync_id, direction=Direction.OUTBOUND)
            .first()
        )
        if row is None:
            return Claim(None, "not-due")
        return _lease(row, now)


def _lease(row: ErpSync, now) -> Claim:
    """Lease `row` (locked or just inserted by the caller's transaction) unless something holds it back."""
    profile = row.profile
    if not profile.enabled or profile.is_paused:
        return Claim(None, "paused")
    if waits_for_earlier(row):
        return Claim(None, "waits-for-earlier")
    circuit = breaker(profile)
    if not circuit.allow():
        # Held, not failed: the row keeps its retries and is due again when the breaker may probe.
        row.status = SyncStatus.QUEUED
        row.next_attempt_at = now + timedelta(seconds=max(1.0, circuit.seconds_until_retry()))
        row.save(update_fields=["status", "next_attempt_at", "updated_at"])
        return Claim(None, "breaker-open")
    connect, read = timeouts(profile)
    row.status = SyncStatus.SENT
    row.claimed_until = now + timedelta(seconds=connect + read + 30)
    row.attempt_count += 1
    row.last_attempt_at = now
    row.request_id = uuid.uuid4().hex
    row.save(update_fields=["status", "claimed_until", "attempt_count", "last_attempt_at", "request_id", "updated_at"])
    return Claim(row, "claimed")


@dataclass
class Response:
    code: int | None
    error_class: str
    message: str
    excerpt: str
    retry_after: float | None
    signed_with: str
    duration_ms: int


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def classify(code: int) -> str:
    """The error class of an HTTP status from the ERP ('' for an acknowledgement)."""
    if 200 <= code < 300 or code == 409:  # 409: the ERP already has this Idempotency-Key
        return ""
    if code in (401, 403):
        return ErrorClass.CREDENTIALS
    if code in (408, 429):
        return ErrorClass.RATE_LIMITED
    if code >= 500:
        return ErrorClass.SERVER
    return ErrorClass.REJECTED


@dataclass(frozen=True)
class SigningMaterial:
    """What signs a profile's messages, read once per batch (a database read and a decryption)."""

    secret: str
    fingerprint: str
    webhook_secrets: tuple
    missing: str = ""


def signing_material(profile) -> SigningMaterial:
    try:
        secret, fingerprint = keyring.signing_key(profile)
    except keyring.MissingKey as exc:
        return SigningMaterial("", "", (), missing=str(exc))
    webhook = ()
    if profile.standard_webhooks:
        webhook = tuple(s for s, _ in keyring.verification_keys(profile)) or (secret,)
    return SigningMaterial(secret, fingerprint, webhook)


def send(row: ErpSync, material: SigningMaterial | None = None) -> Response:
    """POST the row's exact bytes, signed with the profile's current key; never raises for transport errors.

    Touches no database when `material` is given (the batch sender calls it from its thread pool).
    """
    profile = row.profile
    started = time.perf_counter()
    material = material or signing_material(profile)
    if material.missing:
        return Response(None, ErrorClass.CREDENTIALS, material.missing, "", None, "", 0)
    secret, fingerprint = material.secret, material.fingerprint
    body = row.body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signing.x_signature(secret, body),
        "X-Request-Id": row.request_id,
        "Idempotency-Key": row.idempotency_key,
    }
    if profile.standard_webhooks:
        secrets = list(material.webhook_secrets)
        headers.update(
            signing.standard_webhooks_headers(
                secrets, msg_id=row.idempotency_key, timestamp=int(time.time()), body=body
            )
        )
    stored_trace = (row.trace_context or {}).get("traceparent")
    # The originating request's trace (stored with the event at commit), so the ERP's spans join it; a CLIENT
    # span around the POST when OpenTelemetry is on (its id is then the parent the ERP sees).
    with request_context.client_span("erp.outbound.send", stored_trace, {"erp.message_id": row.pk or 0}) as parent:
        headers.update(request_context.headers_for_snapshot(row.trace_context, parent))
        reply, failure = _post(base_url(profile) + UPDATE_PATH, body, headers, timeouts(profile))
    duration = time.perf_counter() - started
    metrics.REQUEST_SECONDS.observe(duration)
    if failure is not None:
        error, message = failure
        return Response(None, error, message, "", None, fingerprint, int(duration * 1000))
    code, excerpt = reply.status_code, reply.text[:500]
    error = classify(code)
    message = f"HTTP {code}" if error else ""
    retry_after = _retry_after_seconds(reply.headers.get("Retry-After"))
    return Response(code, error, message[:2000], excerpt, retry_after, fingerprint, int(duration * 1000))


def _post(url, body, headers, timeout):
    """(reply, None) or (None, (error class, message)). Stored messages say what kind of failure it was, never
    the socket error (addresses, ports: issue 11)."""
    try:
        return http().post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False), None
    except outbound_url.OutboundRefused:
        return None, (ErrorClass.REFUSED, outbound_url.REFUSED_TEXT)
    except requests.Timeout:
        return None, (ErrorClass.TIMEOUT, outbound_url.TIMEOUT_TEXT)
    except requests.RequestException:
        return None, (ErrorClass.CONNECTION, outbound_url.CONNECTION_TEXT)


def retry_delay(retry_number: int, retry_after: float | None) -> float:
    """Seconds before retry `retry_number` (1-based): the schedule's step with jitter, or a longer Retry-After."""
    step = settings.ERP_RETRY_SCHEDULE[retry_number - 1]
    jitter = settings.ERP_RETRY_JITTER
    delay = step * (1 + random.uniform(-jitter, jitter))  # noqa: S311 (spreading retries, not security)
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, settings.ERP_RETRY_AFTER_CAP_SECONDS)
    return delay


def deliver(sync_id) -> str:
    """One attempt at an outbound row if it is due; returns the outcome ('acked', 'retry', 'dead', ...)."""
    claimed = claim(sync_id)
    if claimed.row is None:
        return claimed.reason
    return attempt(claimed.row)


def attempt(row: ErpSync) -> str:
    """Send a row this process leased and record what came back; call outside any transaction."""
    return _record_outcome(row, send(row), row.last_attempt_at)


# What an attempt's outcome writes to its row (the lease's guarded UPDATE sets exactly these).
_OUTCOME_FIELDS = ("status", "response_code", "error_class", "error_message", "claimed_until", "acked_at",
                   "next_attempt_at", "retry_count", "updated_at")  # fmt: skip


def _record_outcome(row: ErpSync, response: Response, started_at) -> str:
    now = timezone.now()
    circuit = breaker(row.profile)
    after_commit = []
    leased_as = row.request_id
    row.response_code = response.code
    row.error_class = response.error_class
    row.error_message = response.message
    row.claimed_until = None
    row.updated_at = now
    dead_cause = None
    if not response.error_class:
        outcome = "acked"
        row.status, row.acked_at, row.next_attempt_at = SyncStatus.ACKED, now, None
        row.error_message = ""
    elif response.error_class in (ErrorClass.CREDENTIALS, ErrorClass.REFUSED):
        # Both need an operator (credentials, or the base URL / ERP_ALLOWED_HOSTS): wait, do not dead-letter.
        outcome = "paused"
        row.status, row.next_attempt_at = SyncStatus.QUEUED, None
    elif response.error_class == ErrorClass.REJECTED:
        outcome, dead_cause = "dead", DeadLetterCause.REJECTED
    elif row.retry_count < len(settings.ERP_RETRY_SCHEDULE):
        outcome = "retry"
        row.retry_count += 1
        delay = retry_delay(row.retry_count, response.retry_after)
        row.status, row.next_attempt_at = SyncStatus.QUEUED, now + timedelta(seconds=delay)
        after_commit.append(lambda: enqueue_delivery(row.pk, countdown=delay))
    else:
        outcome, dead_cause = "dead", DeadLetterCause.EXHAUSTED
    if dead_cause:
        row.status, row.next_attempt_at = SyncStatus.FAILED, None
    with transaction.atomic():
        # Only while our lease holds: a worker that took the row over after it ran out owns it now.
        owned = ErpSync.objects.filter(pk=row.pk, status=SyncStatus.SENT, request_id=leased_as).update(
            **{f: getattr(row, f) for f in _OUTCOME_FIELDS}
        )
        if not owned:
            outcome = "superseded"
            logger.warning("erp: message %s was taken over while attempt %s ran", row.pk, row.attempt_count)
        elif dead_cause:
            _dead_letter_entry(row, dead_cause)
        elif outcome == "paused":
            pause_profile(row.profile, reason=response.message)
        elif outcome == "retry" and row.retry_count == 1:  # its first failure (later retries are not audited)
            delivery_audit.first_failure(row, response)
        ErpSyncAttempt.objects.create(
            sync=row,
            number=row.attempt_count,
            request_id=leased_as,
            started_at=started_at,
            duration_ms=response.duration_ms,
            response_code=response.code,
            outcome=outcome,
            error_class=response.error_class,
            error_message=response.message,
            response_excerpt=response.excerpt,
            signed_with=response.signed_with,
        )
        if owned:
            for callback in after_commit:
                transaction.on_commit(callback)
            if outcome in ("acked", "dead"):
                release_next(row.job_id)
    metrics.ATTEMPTS.labels(outcome).inc()
    if outcome == "acked":
        metrics.SUCCESSES.inc()
        if row.event_id:
            metrics.PUBLISH_LATENCY.observe(max(0.0, (now - row.created_at).total_seconds()))
    elif response.error_class:
        metrics.FAILURES.labels(response.error_class).inc()
    if outcome == "retry":
        metrics.RETRIES.inc()
    if response.error_class in (ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.SERVER):
        circuit.record_failure()
    elif response.code is not None:
        circuit.record_success()  # the ERP answered: it is up, whatever it thought of this message
    return outcome


def _dead_letter(row: ErpSync, cause: str) -> None:
    """Move `row` to the DLQ (inside the caller's transaction; the caller saves the row)."""
    row.status, row.next_attempt_at = SyncStatus.FAILED, None
    _dead_letter_entry(row, cause)


def _dead_letter_entry(row: ErpSync, cause: str) -> None:
    ErpOutboundDeadLetter.objects.create(
        sync=row,
        cause=cause,
        error_class=row.error_class,
        response_code=row.response_code,
        error_message=row.error_message,
        attempts=row.attempt_count,
    )
    metrics.DEAD_LETTERS.labels(cause).inc()
    logger.warning("erp: message %s dead-lettered (%s, %s)", row.pk, cause, row.error_message)
    delivery_audit.dead_lettered(row, cause)


def release_next(job_id) -> None:
    """Kick the job's next waiting message once nothing before it holds it back.

    Call inside the transaction that lets it go (an acknowledgement, a dead letter, an event that sends
    nothing); the kick goes out after commit.
    """
    if job_id is None:
        return
    _lock_job(job_id)
    nxt = (
        ErpSync.objects.filter(direction=Direction.OUTBOUND, job_id=job_id, status=SyncStatus.QUEUED)
        .order_by("seq")
        .values_list("pk", flat=True)
        .first()
    )
    if nxt is not None:
        transaction.on_commit(lambda: enqueue_delivery(nxt))


def deliver_due(*, limit=500, deadline_seconds=30.0) -> dict:
    """Backstop sweep: deliver every due row in batches (lost wake-ups, due retries, abandoned claims)."""
    from . import delivery

    return delivery.pump(budget_seconds=deadline_seconds, max_messages=limit)


def record_inbound_refusal(*, status_code: int, reason: str, client_ip: str) -> None:
    """Audit an inbound request refused with 401/403 (bad address, token or signature): one entry per
    (address, reason) per minute, the rest counted into the next one, so a flood cannot fill the audit table."""
    audit.record_once_per_window(
        ("anonymous", ""),
        "erp.inbound.refused",
        None,
        {"status": status_code, "reason": reason},
        key=f"{client_ip}:{reason}",
        object_type="erp.inbound",
    )


# Split by topic (issue 13); re-exported so that apps.erp.services.<name> keeps working for callers and tests.
from .dead_letters import (  # noqa: E402, F401
    NOT_IN_DLQ,
    SUPERSEDED,
    ReplayResult,
    _close_open_dead_letters,
    close,
    replay,
    replay_matching,
    requeue,
)
from .reconcile import (  # noqa: E402, F401
    note_outage_ended,
    reconcile_outbound,
    redrive_after_outage,
    superseded_dead_letters,
)
