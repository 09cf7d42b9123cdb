"""The one way into the audit log (`record`) and the sealer that chains entries in commit order."""

import contextlib
import json
import logging
import os
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.core import request_context

from . import hashing, signatures, subject_keys, witness
from .merkle import Frontier
from .models import ActorType, AuditCheckpoint, AuditLog, AuditPurge

logger = logging.getLogger(__name__)
# Checkpoints also go to the application log (and the witness file), so they exist outside the database.
checkpoint_log = logging.getLogger(witness.CHECKPOINT_LOGGER)

# Key of the PostgreSQL advisory lock that lets one sealer at a time extend the chain.
SEALER_LOCK_KEY = 0x7E5A_A0D1
SEAL_BATCH = 2000


def _actor(actor):
    if actor is None:
        return ActorType.SYSTEM, ""
    if isinstance(actor, tuple):
        return actor
    if getattr(actor, "is_authenticated", False):
        return ActorType.USER, str(actor.pk)
    return ActorType.ANONYMOUS, ""


def _plain_json(payload):
    """The payload as it will read back from the database: JSON types only, so its hash stays stable."""
    return json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder))


def _subject_of(subject, obj, object_type, object_id) -> str | None:
    """Whose personal values the payload holds: `subject` (a user or an id), else the user the entry is about."""
    if subject is not None:
        return str(getattr(subject, "pk", subject))
    user_label = settings.AUTH_USER_MODEL.lower()
    if obj is not None and obj._meta.label_lower == user_label and obj.pk is not None:
        return str(obj.pk)
    if object_type == user_label and object_id:
        return str(object_id)
    return None


def record(
    actor, action, obj=None, payload=None, *, tenant_id=None, object_type=None, object_id=None, subject=None
) -> AuditLog:
    """Append an entry describing `action` by `actor` on `obj`; call inside the transaction of the change.

    `actor` is a user, None (the system) or an (actor_type, actor_id) pair; `obj` any model instance
    (or None with object_type/object_id). The request id and client IP come from the request context.
    Personal values (payload keys in AUDIT_PERSONAL_PAYLOAD_KEYS) are stored encrypted under the key of the
    entry's data subject, `subject` or the user `obj` is (apps/audit/subject_keys.py: erasure destroys the key).
    The entry is written unsealed; the sealer process gives it its place in the chain within
    a fraction of a second after commit, so a rolled-back change leaves no entry and writers never wait
    for each other. (Sealing right after each commit instead costs a second commit per entry:
    docs/benchmarks.md.)
    """
    actor_type, actor_id = _actor(actor)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        if tenant_id is None:
            tenant_id = getattr(obj, "tenant_id", None)
    context = request_context.current()
    clean = _plain_json(payload)
    subject_id = _subject_of(subject, obj, object_type, object_id)
    if subject_id and settings.GDPR_COMPLIANCE_MODE:
        clean = subject_keys.protect(clean, subject_id)
    canonical = hashing.canonical_json_fast(clean)
    entry = AuditLog.objects.create(
        ts=timezone.now(),
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        object_type=object_type or "",
        object_id=object_id or "",
        payload=clean,
        payload_sha256=hashing.sha256_hex(canonical),
        payload_canonical=canonical.decode(),  # what verification hashes (docs/audit.md, "Verifying fast")
        tenant_id=tenant_id,
        request_id="" if context.request_id == "-" else context.request_id,
        client_ip=context.client_ip,
        version=hashing.SCHEMA_VERSION,
    )
    return entry


# Refusals an outsider can cause at will (bad tokens, throttled sign-ins) are recorded once per window.
REFUSAL_WINDOW_SECONDS = 60
_SUPPRESSED_TTL = 24 * 3600


def record_once_per_window(actor, action, obj=None, payload=None, *, key: str, window=REFUSAL_WINDOW_SECONDS, **kw):
    """Like `record`, but at most one entry per (`action`, `key`) per `window`-second clock window; returns it or None.

    For events anybody can cause at will (a refused request, a throttled sign-in) so that a flood cannot
    fill the audit table: `key` is what to count by (the client address and the reason). The ones not
    recorded are counted in the cache, and the next entry for the same key carries that count as
    `suppressed_before` (how many were refused and not recorded since the previous entry).
    """
    from django.core.cache import cache

    from apps.core.throttling import count_in_window

    # Fixed windows by the clock (like the throttles' counters): the gate key names the window it is for.
    gate = f"audit-once:{action}:{key}:{int(time.time() // window)}"
    pending = f"audit-suppressed:{action}:{key}"
    if not cache.add(gate, 1, window + 1):
        count_in_window(cache, pending, _SUPPRESSED_TTL)
        return None
    suppressed = cache.get(pending) or 0
    if suppressed:
        # decr, not delete: a refusal counted meanwhile stays counted for the next entry.
        with contextlib.suppress(ValueError):
            cache.decr(pending, suppressed)
    body = {**(payload or {}), "window_seconds": window, "suppressed_before": suppressed}
    with transaction.atomic():
        return record(actor, action, obj, body, **kw)


def entry_fields(row: AuditLog) -> dict:
    """The row's hashed fields as the record hash sees them (ts formatted)."""
    return {
        "seq": row.seq, "ts": hashing.format_ts(row.ts), "actor_type": row.actor_type, "actor_id": row.actor_id,
        "action": row.action, "object_type": row.object_type, "object_id": row.object_id,
        "payload_sha256": row.payload_sha256, "tenant_id": row.tenant_id, "request_id": row.request_id,
        "client_ip": row.client_ip, "version": row.version,
    }  # fmt: skip


def _take_sealer_lock(wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite transactions here are IMMEDIATE: one writer at a time already
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
        return cursor.fetchone()[0]


_SEAL_COLUMNS = (
    "id", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload_sha256", "tenant_id",
    "request_id", "client_ip", "version",
)  # fmt: skip


def _write_seals(seals) -> None:
    """seals: (id, seq, record_sha256, prev_hash, chain_hash) tuples; one statement on PostgreSQL."""
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values = ", ".join(["(%s::bigint, %s::bigint, %s, %s, %s)"] * len(seals))
            cursor.execute(
                "UPDATE audit_logs AS a SET seq = v.seq, record_sha256 = v.rec, prev_hash = v.prev, "  # noqa: S608
                f"chain_hash = v.chain, sealed_at = %s FROM (VALUES {values}) AS v(id, seq, rec, prev, chain) "
                "WHERE a.id = v.id",
                [now, *(x for seal in seals for x in seal)],
            )
        else:
            cursor.executemany(
                "UPDATE audit_logs SET seq = %s, record_sha256 = %s, prev_hash = %s, chain_hash = %s, sealed_at = %s "
                "WHERE id = %s",
                [(seq, rec, prev, chain, now, pk) for pk, seq, rec, prev, chain in seals],
            )


def _start_after_purge():
    """(seq, chain hash) the chain continues from when no sealed entry is left: the checkpoint a retention purge
    kept at its end (a purge through the head), or the genesis of an empty chain."""
    through = AuditPurge.objects.order_by("-through_seq").values_list("through_seq", flat=True).first()
    if through:
        anchor = AuditCheckpoint.objects.filter(tree_size=through).values_list("head_hash", flat=True).first()
        if anchor:
            return through, anchor
    return 0, hashing.GENESIS_HASH


def seal_pending(*, wait=True, batch=SEAL_BATCH) -> int:
    """Give committed unsealed entries the next seq numbers and their hashes; returns how many.

    Only committed rows are visible here, so seq follows commit order. With wait=False it returns 0
    at once when another sealer is busy (that one, or the next, picks these rows up).
    """
    sealed = 0
    while True:
        with transaction.atomic():
            if not _take_sealer_lock(wait):
                return sealed
            head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "chain_hash").first()
            seq, prev = (head["seq"], head["chain_hash"]) if head else _start_after_purge()
            rows = list(AuditLog.objects.filter(seq__isnull=True).order_by("id").values_list(*_SEAL_COLUMNS)[:batch])
            if not rows:
                return sealed
            seals = []
            for row in rows:
                fields = dict(zip(_SEAL_COLUMNS, row, strict=True))
                seq += 1
                fields["seq"] = seq
                fields["ts"] = hashing.format_ts(fields["ts"])
                record = hashing.record_sha256(fields)
                chain = hashing.chain_hash(prev, record)
                seals.append((fields["id"], seq, record, prev, chain))
                prev = chain
            _write_seals(seals)
            sealed += len(seals)
        if len(rows) < batch:
            return sealed


def signing_key():
    """The checkpoint signing key from AUDIT_SIGNING_KEY; with DEBUG and none set, a local generated one."""
    text = settings.AUDIT_SIGNING_KEY
    if not text:
        if not settings.DEBUG:
            raise ImproperlyConfigured("Set AUDIT_SIGNING_KEY (or AUDIT_SIGNING_KEY_FILE) to sign audit checkpoints")
        path = settings.VAR_DIR / "audit-signing-key.pem"
        if not path.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        text = path.read_text()
    try:
        return signatures.load_private_key(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY is not a usable Ed25519 private key: {exc}") from exc


def make_checkpoint(*, force=False, now=None) -> AuditCheckpoint | None:
    """Sign the chain's current size, head hash and Merkle root when due (or when `force`); returns it or None.

    Due when AUDIT_CHECKPOINT_EVERY entries were sealed since the last checkpoint, or
    AUDIT_CHECKPOINT_MINUTES passed and the chain grew.
    """
    now = now or timezone.now()
    key = signing_key()
    with transaction.atomic():
        _take_sealer_lock(True)
        last = AuditCheckpoint.objects.order_by("-tree_size").first()
        head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "chain_hash").first()
        if head is None or (last is not None and head["seq"] <= last.tree_size):
            return None
        if not force and last is not None:
            grown = head["seq"] - last.tree_size
            if grown < settings.AUDIT_CHECKPOINT_EVERY and now - last.ts < timedelta(
                minutes=settings.AUDIT_CHECKPOINT_MINUTES
            ):
                return None
        frontier = Frontier.from_json(last.frontier if last else None)
        new_hashes = (
            AuditLog.objects.filter(seq__gt=frontier.size, seq__lte=head["seq"])
            .order_by("seq")
            .values_list("record_sha256", flat=True)
        )
        for record_hash in new_hashes.iterator(chunk_size=10000):
            frontier.append(bytes.fromhex(record_hash))
        checkpoint = AuditCheckpoint(
            tree_size=head["seq"],
            head_hash=head["chain_hash"],
            merkle_root=frontier.root().hex(),
            ts=now,
            key_id=signatures.key_id(key.public_key()),
            frontier=frontier.to_json(),
        )
        checkpoint.signature = signatures.sign(key, checkpoint.statement_fields())
        checkpoint.save()
    if settings.AUDIT_TSA_URL:
        _timestamp(checkpoint)
    checkpoint_log.info("%s", witness.log_message(checkpoint.statement_fields()))
    _update_witness_file(checkpoint)
    return checkpoint


def checkpoint_witness(checkpoint: AuditCheckpoint) -> dict:
    """The witness JSON of a signed checkpoint: what the sealer logs and writes to AUDIT_WITNESS_FILE, what
    `verify_audit_chain --trusted-checkpoint` reads, and what to ship to a SIEM to keep outside the database."""
    return witness.document(checkpoint.statement_fields())


def held_witness() -> dict | None:
    """The checkpoint in AUDIT_WITNESS_FILE, or None when there is no such file; ImproperlyConfigured when
    it is there but unusable (an unreadable witness must not pass as no witness)."""
    path = settings.AUDIT_WITNESS_FILE
    if not path or not os.path.exists(path):
        return None
    try:
        return witness.read(path)
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"the audit witness file {path} is unusable: {exc}") from None


def witness_file_problem(path, checkpoint: AuditCheckpoint) -> str | None:
    """Why `checkpoint` must not replace the witness in `path` (the chain no longer reaches it), or None."""
    try:
        held = witness.read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("the audit witness file %s is unreadable (%s): replacing it", path, exc)
        return None
    at = AuditLog.objects.filter(seq=held["tree_size"]).values_list("chain_hash", flat=True).first()
    if at is None and AuditPurge.objects.filter(through_seq__gte=held["tree_size"]).exists():
        # Purged by retention in whole segments: the kept checkpoint at that size holds the head hash.
        at = AuditCheckpoint.objects.filter(tree_size=held["tree_size"]).values_list("head_hash", flat=True).first()
    if at is None:
        return f"the witness covers {held['tree_size']} entries, the chain only {checkpoint.tree_size}"
    if at != held["head_hash"]:
        return f"the chain's head hash at {held['tree_size']} entries differs from the witness's"
    return None


def _witness_is_newer(path, checkpoint: AuditCheckpoint) -> bool:
    try:
        return witness.read(path)["tree_size"] >= checkpoint.tree_size
    except (OSError, ValueError):
        return False


def _update_witness_file(checkpoint: AuditCheckpoint) -> None:
    """Move the witness file forward to `checkpoint`, but never back or sideways: a chain cut or rewritten
    below the witness keeps failing verification against it (and is logged as an error here)."""
    path = settings.AUDIT_WITNESS_FILE
    if not path:
        return
    problem = witness_file_problem(path, checkpoint)
    if problem:
        checkpoint_log.error(
            "checkpoint at %s entries does not extend the witnessed checkpoint in %s (%s): the witness file is "
            "kept; run verify_audit_chain", checkpoint.tree_size, path, problem,
        )  # fmt: skip
        return
    if _witness_is_newer(path, checkpoint):
        return  # another sealer (or the beat task) wrote a later checkpoint that the chain reaches
    try:
        witness.write(path, checkpoint.statement_fields())
    except OSError as exc:
        checkpoint_log.error("the audit witness file %s could not be written: %s", path, exc)


def _timestamp(checkpoint: AuditCheckpoint) -> None:
    """Have the TSA time-stamp the signed statement; after commit, so the sealer lock is not held for it.

    A TSA that is down costs the token, not the checkpoint: the failure is logged and the checkpoint stands.
    """
    from apps.core.circuit_breaker import CircuitBreaker

    from .timestamping import TimestampError, timestamp

    breaker = CircuitBreaker("tsa", failure_threshold=3, cooldown=300)
    if not breaker.allow():
        logger.warning("checkpoint %s has no RFC 3161 timestamp: the TSA breaker is open", checkpoint.tree_size)
        return
    try:
        token = timestamp(
            settings.AUDIT_TSA_URL,
            signatures.statement(checkpoint.statement_fields()),
            timeout=settings.AUDIT_TSA_TIMEOUT_SECONDS,
        )
    except TimestampError as exc:
        breaker.record_failure()
        logger.warning("checkpoint %s has no RFC 3161 timestamp: %s", checkpoint.tree_size, exc)
        return
    breaker.record_success()
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(tsa_token=token)
    checkpoint.tsa_token = token


PURGE_BATCH = 5000


def purge_through(tree_size: int, *, reason: str, batch=PURGE_BATCH, archive=None, stop_after=None) -> AuditPurge:
    """Delete the entries up to `tree_size`, which must be a signed checkpoint's; that checkpoint is kept, so the
    chain left still verifies from it (verify_audit_chain and the offline verifier start right after it).

    Records the purge first (the append-only trigger allows DELETE only up to a recorded purge that ends at a
    checkpoint), then deletes in batches of `batch`, each in its own transaction, oldest first; `archive(entries)`
    is called with each batch (chain_entries dicts) before it is deleted. Safe to run again after an interruption:
    it carries on with what is left. `stop_after` (batches) is for tests that interrupt it. Retention's legal holds
    are the caller's business (apps.governance).
    """
    if not AuditCheckpoint.objects.filter(tree_size=tree_size).exists():
        raise ValueError(f"no checkpoint at {tree_size} entries: the audit log is purged only in whole segments")
    with transaction.atomic():
        purge, created = AuditPurge.objects.get_or_create(
            through_seq=tree_size, defaults={"ts": timezone.now(), "reason": reason[:500]}
        )
        if created:
            record(None, "audit.purged", purge, {"through_seq": tree_size, "reason": reason[:500]})
    done = 0
    while stop_after is None or done < stop_after:
        with transaction.atomic():
            first = AuditLog.objects.filter(seq__isnull=False, seq__lte=tree_size).order_by("seq")
            first = first.values_list("seq", flat=True).first()
            if first is None:
                break
            last = min(tree_size, first + batch - 1)
            if archive is not None:
                from . import selectors

                archive(list(selectors.chain_entries(from_seq=first, to_seq=last)))
            # One DELETE by a seq range (no ORM collection of rows): nothing references audit entries.
            deleted = AuditLog.objects.filter(seq__gte=first, seq__lte=last)._raw_delete(AuditLog.objects.db)
            AuditPurge.objects.filter(pk=purge.pk).update(deleted=F("deleted") + deleted)
        done += 1
    else:
        purge.refresh_from_db()
        return purge
    AuditPurge.objects.filter(pk=purge.pk, finished_at__isnull=True).update(finished_at=timezone.now())
    purge.refresh_from_db()
    return purge
