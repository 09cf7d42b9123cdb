"""Collect audit entries and checkpoints into the SIEM table, ship it in order, re-send ranges on request.

At-least-once: `ship` moves a destination's cursor past a batch only after `transport.send` returned (the
SIEM closed the connection in answer, having read it all). While the SIEM is down, the breaker is open or
the send fails, records wait in the table (the admin shows their age and the last error); the beat task
`ship_siem` sends them, oldest first, once the SIEM answers again. Nobody has to act.
"""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.models import AuditCheckpoint, AuditLog
from apps.core.circuit_breaker import CircuitBreaker

from . import envelope, rfc5424, transport
from .models import SiemCollectCursor, SiemDestination, SiemRecord

logger = logging.getLogger(__name__)

COLLECT_BATCH = 1000


def breaker(endpoint) -> CircuitBreaker:
    return CircuitBreaker(
        f"siem:{endpoint}",
        failure_threshold=settings.SIEM_BREAKER_FAILURES,
        cooldown=settings.SIEM_BREAKER_COOLDOWN_SECONDS,
    )


def configured_endpoint() -> transport.Endpoint | None:
    return transport.parse_endpoint(settings.SIEM_ENDPOINT) if settings.SIEM_ENDPOINT else None


# ---------------------------------------------------------------- collecting


def _cursor(source: str) -> SiemCollectCursor:
    SiemCollectCursor.objects.get_or_create(source=source)
    return SiemCollectCursor.objects.select_for_update().get(source=source)


def collect(*, batch: int = COLLECT_BATCH) -> int:
    """Copy sealed audit entries (by seq, gap-free in commit order) and signed checkpoints into the table.

    One collector at a time (the audit cursor row is locked throughout), so record ids follow the sources'
    order. Returns how many records were written.
    """
    written = 0
    with transaction.atomic():
        audit_cursor = _cursor("audit")
        checkpoint_cursor = _cursor("checkpoint")
        while True:
            entries = list(AuditLog.objects.filter(seq__gt=audit_cursor.position).order_by("seq")[:batch])
            checkpoints = list(
                AuditCheckpoint.objects.filter(tree_size__gt=checkpoint_cursor.position).order_by("tree_size")[:batch]
            )
            if not entries and not checkpoints:
                break
            # Interleave: a checkpoint of size n comes after entry n (the entries it covers).
            items = [(e.seq, 0, e) for e in entries] + [(c.tree_size, 1, c) for c in checkpoints]
            limit = entries[-1].seq if len(entries) == batch else None
            rows = []
            for position, kind, item in sorted(items, key=lambda t: (t[0], t[1])):
                if limit is not None and position > limit:
                    break
                if kind == 0:
                    env = envelope.for_audit_entry(item)
                    rows.append(_record("audit", item.seq, env, item.ts))
                    audit_cursor.position = item.seq
                else:
                    env = envelope.for_checkpoint(item, audit.checkpoint_witness(item))
                    rows.append(_record("checkpoint", item.tree_size, env, item.ts))
                    checkpoint_cursor.position = item.tree_size
            SiemRecord.objects.bulk_create(rows)
            written += len(rows)
            if limit is None:
                break
        audit_cursor.save(update_fields=["position"])
        checkpoint_cursor.save(update_fields=["position"])
    return written


def _record(source, ref, env, ts) -> SiemRecord:
    message = rfc5424.message(env, msgid=source, facility=settings.SIEM_FACILITY, sd_id=settings.SIEM_SD_ID)
    return SiemRecord(
        event_id=env["event_id"], source=source, source_ref=ref, event=env["event"][:100], level=env["level"],
        ts=ts, envelope=env, message=message.decode(),
    )  # fmt: skip


# ---------------------------------------------------------------- shipping


def frames(records) -> list[bytes]:
    """The octet-counted frames of these records' stored messages (rendered once, when collected)."""
    return [rfc5424.frame(r.message.encode()) for r in records]


def destination(endpoint) -> SiemDestination:
    return SiemDestination.objects.get_or_create(endpoint=str(endpoint))[0]


def _waiting(after: int, limit: int) -> list:
    return list(SiemRecord.objects.filter(pk__gt=after).only("pk", "message").order_by("pk")[:limit])


def ship(*, max_seconds: float | None = None, collect_first: bool = True) -> int:
    """Send every record behind SIEM_ENDPOINT's cursor, in id order; returns how many the SIEM accepted.

    One connection per run: batches of SIEM_BATCH_SIZE are written one after the other (at most
    SIEM_SHIP_MAX_RECORDS, for at most `max_seconds`), then the connection is closed and, once the SIEM has
    closed it in answer, the cursor moves past the last one. A failure anywhere leaves the cursor where it
    was: the records wait for the next run (those written before the failure are sent again; the SIEM drops
    copies by event id). Nothing is sent while the breaker is open or another shipper holds the destination.
    """
    endpoint = configured_endpoint()
    if endpoint is None:
        return 0
    if collect_first:
        collect()
    dest_id = destination(endpoint).pk
    gate = breaker(endpoint)
    deadline = time.monotonic() + (settings.SIEM_SHIP_MAX_SECONDS if max_seconds is None else max_seconds)
    with transaction.atomic():
        dest = SiemDestination.objects.select_for_update(skip_locked=True).filter(pk=dest_id).first()
        if dest is None:
            return 0  # another shipper is sending to this destination
        records = _waiting(dest.last_sent_id, settings.SIEM_BATCH_SIZE)
        if not records or not gate.allow():
            return 0
        started_at = timezone.now()
        sent, last_id = 0, dest.last_sent_id
        connection = None
        try:
            connection = transport.Connection(endpoint)
            while records:
                connection.write(frames(records))
                sent, last_id = sent + len(records), records[-1].pk
                if sent >= settings.SIEM_SHIP_MAX_RECORDS or time.monotonic() >= deadline:
                    break
                records = _waiting(last_id, settings.SIEM_BATCH_SIZE)
            connection.finish()
        except (OSError, ValueError, transport.outbound_url.OutboundRefused) as exc:
            if connection is not None:
                connection.close()
            gate.record_failure()
            dest.last_attempt_at = started_at
            dest.last_error = transport.failure_text(exc)[:2000]
            dest.consecutive_failures += 1
            dest.save(update_fields=["last_attempt_at", "last_error", "consecutive_failures"])
            logger.warning("siem: records wait for %s: %s", endpoint, dest.last_error)
            return 0
        gate.record_success()
        dest.last_sent_id = last_id
        dest.last_sent_at = timezone.now()
        dest.last_attempt_at = started_at
        dest.last_error = ""
        dest.consecutive_failures = 0
        dest.save(update_fields=["last_sent_id", "last_sent_at", "last_attempt_at", "last_error",
                                 "consecutive_failures"])  # fmt: skip
    return sent


# ---------------------------------------------------------------- replay


def replay_queryset(*, since=None, until=None, event=None):
    rows = SiemRecord.objects.order_by("pk")
    if since is not None:
        rows = rows.filter(ts__gte=since)
    if until is not None:
        rows = rows.filter(ts__lt=until)
    if event:
        rows = rows.filter(event__startswith=event[:-1]) if event.endswith("*") else rows.filter(event=event)
    return rows


def resend(records, *, actor=None, reason: str = "") -> int:
    """Send these records again now, in id order, whatever the cursor says (it does not move); audited.

    Raises on the first failed batch (what was sent before it stays sent). The SIEM sees the same event ids.
    """
    endpoint = configured_endpoint()
    if endpoint is None:
        raise transport.SiemEndpointError("SIEM_ENDPOINT is not set")
    ids = (
        list(records.order_by("pk").values_list("pk", flat=True))
        if hasattr(records, "values_list")
        else [r.pk for r in sorted(records, key=lambda r: r.pk)]
    )
    sent = 0
    size = settings.SIEM_BATCH_SIZE
    for start in range(0, len(ids), size):
        batch = list(SiemRecord.objects.filter(pk__in=ids[start : start + size]).only("pk", "message").order_by("pk"))
        transport.send(endpoint, frames(batch))
        sent += len(batch)
    if ids:
        with transaction.atomic():
            audit.record(
                actor, "siem.replayed", None,
                {"records": sent, "first_id": ids[0], "last_id": ids[-1], "endpoint": str(endpoint),
                 "reason": reason[:500]},
                object_type="siem.siemrecord",
            )  # fmt: skip
    return sent
