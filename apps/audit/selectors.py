"""Audit reads: the sealed chain as verifier input, streamed from a server-side cursor."""

import csv
import io
import json
import uuid

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import hashing, merkle, verification
from .models import AuditCheckpoint, AuditLog, AuditPurge

_COLUMNS = (
    "id", "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload",
    "payload_sha256", "tenant_id", "request_id", "client_ip", "version", "record_sha256", "prev_hash",
    "chain_hash",
)  # fmt: skip


TENANTLESS_CAPABILITY = "audit.view_tenantless_entries"


def entries_visible_to(user, queryset=None):
    """Audit entries `user` may read: a superuser all; anybody else the entries of tenants they work on, and
    the entries of no tenant (sign-ins, user admin, exports: people and addresses of every tenant) only with
    the capability audit.view_tenantless_entries (auditors). Tenants are read the one way (django-guardian,
    apps.accounts.selectors), as an EXISTS on the entry's tenant_id."""
    from apps.accounts.selectors import granted_tenant_condition, sees_all_tenants

    queryset = AuditLog.objects.all() if queryset is None else queryset
    if not user or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if sees_all_tenants(user):
        return queryset
    of_tenants = granted_tenant_condition(user, tenant_field="tenant")
    if user.has_perm(TENANTLESS_CAPABILITY):
        return queryset.filter(Q(tenant_id__isnull=True) | of_tenants)
    return queryset.filter(of_tenants)


def export_scope(user) -> dict:
    """What a forensic export for `user` holds in full (written into its header and its audit entry)."""
    from apps.accounts.selectors import sees_all_tenants, tenants_for

    if user is None or sees_all_tenants(user):
        return {"tenants": "all", "tenantless": "included"}
    tenant_ids = sorted(tenants_for(user).values_list("pk", flat=True))
    return {
        "tenants": ",".join(str(pk) for pk in tenant_ids) or "none",
        "tenantless": "included" if user.has_perm(TENANTLESS_CAPABILITY) else "excluded",
    }


def chain_entries(*, from_seq=None, to_seq=None, chunk_size=5000):
    """Sealed entries in seq order as plain dicts (ts formatted as hashed), without loading them all."""
    qs = AuditLog.objects.filter(seq__isnull=False).order_by("seq")
    if from_seq is not None:
        qs = qs.filter(seq__gte=from_seq)
    if to_seq is not None:
        qs = qs.filter(seq__lte=to_seq)
    if connection.vendor == "postgresql":
        yield from _chain_entries_postgresql(from_seq, to_seq, chunk_size)
        return
    for row in qs.values_list(*_COLUMNS).iterator(chunk_size=chunk_size):
        entry = dict(zip(_COLUMNS, row, strict=True))
        entry["ts"] = hashing.format_ts(entry["ts"])
        yield entry


def retained_start() -> int:
    """The first seq the chain still holds after retention purges (1 when nothing was purged): the entry after
    the latest purge's checkpoint, whose signed head hash anchors the walk (docs/governance.md)."""
    through = AuditPurge.objects.order_by("-through_seq").values_list("through_seq", flat=True).first()
    return (through or 0) + 1


def _sealed_range(from_seq, to_seq) -> tuple[list[str], list]:
    """SQL conditions and parameters for sealed entries with seq in [from_seq, to_seq] (either bound optional)."""
    where, params = ["seq IS NOT NULL"], []
    if from_seq is not None:
        where.append("seq >= %s")
        params.append(from_seq)
    if to_seq is not None:
        where.append("seq <= %s")
        params.append(to_seq)
    return where, params


def _chain_entries_postgresql(from_seq, to_seq, chunk_size):
    """chain_entries on PostgreSQL: a server-side cursor of plain columns, without the ORM's per-row work.

    Timestamps are formatted in SQL (much cheaper than converting and formatting a million in Python); the
    payload arrives as its JSON text and is parsed with json.loads, as the ORM's JSONField would.
    """
    columns = ", ".join(
        """to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        if c == "ts"
        else ("payload::text" if c == "payload" else c)
        for c in _COLUMNS
    )
    where, params = _sealed_range(from_seq, to_seq)
    # Column and table names are ours; the bounds are parameters.
    sql = f"SELECT {columns} FROM {AuditLog._meta.db_table} WHERE {' AND '.join(where)} ORDER BY seq"  # noqa: S608
    payload_at = _COLUMNS.index("payload")
    loads = verification.payload_loader()

    with transaction.atomic(using=connection.alias, savepoint=False):
        connection.ensure_connection()
        with connection.connection.cursor(name=f"audit_walk_{uuid.uuid4().hex}") as cursor:
            cursor.itersize = chunk_size
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(chunk_size):
                for row in rows:
                    entry = dict(zip(_COLUMNS, row, strict=True))
                    entry["payload"] = loads(row[payload_at])
                    yield entry


# The version-1 record body (hashing._BODY_V1) assembled by PostgreSQL from the columns: to_json() escapes
# text exactly as json's encoder does for these fields, so these are the bytes hashing.record_bytes makes.
# The hash is still computed (and compared) in Python; a body that does not hash to record_sha256 sends
# the chunk through the Python path, which decides (verification.verify_entries).
_SQL_BODY = (
    """'{"action":' || to_json(action)::text || ',"actor_id":' || to_json(actor_id)::text"""
    """ || ',"actor_type":' || to_json(actor_type)::text || ',"client_ip":' || to_json(client_ip)::text"""
    """ || ',"object_id":' || to_json(object_id)::text || ',"object_type":' || to_json(object_type)::text"""
    """ || ',"payload_sha256":' || to_json(payload_sha256)::text || ',"request_id":' || to_json(request_id)::text"""
    """ || ',"seq":' || seq::text || ',"tenant_id":' || COALESCE(tenant_id::text, 'null')"""
    """ || ',"ts":"' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    """ || '","version":' || version::text || '}'"""
)
# The version-2 record body (hashing.record_bytes_v2) assembled by PostgreSQL: netstrings of the columns, plain
# concatenation and octet_length (the database's encoding is UTF-8: bytes as Python's str.encode counts them), so
# it costs a fraction of the version-1 body's to_json calls. Same rule: hashed and compared in Python, and a body
# that does not hash to record_sha256 sends its chunk through the Python path.
_SQL_BODY_V2 = (
    """'15:tezgah-audit-v2,' || length(seq::text) || ':' || seq::text"""
    """ || ',27:' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || ','"""
    + "".join(
        f" || octet_length({c}) || ':' || {c} || ','"
        for c in ("actor_type", "actor_id", "action", "object_type", "object_id", "payload_sha256")
    )
    + """ || COALESCE(length(tenant_id::text) || ':' || tenant_id::text, '0:') || ','"""
    + "".join(f" || octet_length({c}) || ':' || {c} || ','" for c in ("request_id", "client_ip"))
)
SQL_RECORD_BODY = f"CASE WHEN version = 2 THEN {_SQL_BODY_V2} ELSE {_SQL_BODY} END"
# Field order of verification_rows' tuples (verification.RowChunk reads them by these positions).
ROW_FIELDS = (
    "seq", "id", "body", "payload_canonical", "payload_text", "payload_matches", "payload_sha256", "record_sha256",
    "prev_hash", "chain_hash",
)  # fmt: skip


def verification_rows(*, from_seq=None, to_seq=None, chunk_size=20000):
    """Sealed entries in seq order for the database verifier, as lists of ROW_FIELDS tuples (PostgreSQL only).

    Per entry: the record body as PostgreSQL assembles it, the stored canonical payload (or, for entries
    written before it was stored, the payload's JSON text to canonicalise), whether the payload column still
    holds what the canonical payload says (compared by PostgreSQL, as jsonb text; false without parsing it when
    the copy does not hash to payload_sha256, so a copy that is not JSON cannot fail the query), and the three
    hashes.
    A thread fetches the next chunk while the caller hashes this one: PostgreSQL assembles the rows on the
    other core, and psycopg releases the GIL while it waits for them.
    """
    import contextlib
    import queue
    import threading

    where, params = _sealed_range(from_seq, to_seq)
    sql = (
        f"SELECT seq, id, {SQL_RECORD_BODY}, payload_canonical, "  # noqa: S608 - our columns; the bounds are parameters
        "CASE WHEN payload_canonical IS NULL THEN payload::text END, "
        "payload_canonical IS NULL OR CASE WHEN encode(sha256(convert_to(payload_canonical, 'UTF8')), 'hex') = "
        "payload_sha256 THEN payload::text = payload_canonical::jsonb::text ELSE false END, "
        f"payload_sha256, record_sha256, prev_hash, chain_hash FROM {AuditLog._meta.db_table} "
        f"WHERE {' AND '.join(where)} ORDER BY seq"
    )
    chunks, stop, done = queue.Queue(maxsize=2), threading.Event(), object()

    def fetch(cursor):
        try:
            while not stop.is_set() and (rows := cursor.fetchmany(chunk_size)):
                chunks.put(rows)
            chunks.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            chunks.put(exc)

    with transaction.atomic(using=connection.alias, savepoint=False):
        connection.ensure_connection()
        with connection.connection.cursor(name=f"audit_verify_{uuid.uuid4().hex}") as cursor:
            cursor.itersize = chunk_size
            cursor.execute(sql, params)
            worker = threading.Thread(target=fetch, args=(cursor,), daemon=True)
            worker.start()
            try:
                while (item := chunks.get()) is not done:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            except GeneratorExit:
                # The caller stopped early (a finding): not an error, so the atomic block must not see one
                # (it would mark the caller's transaction for rollback).
                pass
            finally:
                stop.set()
                while worker.is_alive():  # let a fetch that waits on a full queue finish
                    with contextlib.suppress(queue.Empty):
                        chunks.get(timeout=0.1)
                worker.join()


def chain_start(from_seq):
    """(expected seq, previous chain hash) for a walk starting at `from_seq`."""
    if not from_seq or from_seq <= 1:
        return 1, hashing.GENESIS_HASH
    prev = AuditLog.objects.filter(seq=from_seq - 1).values_list("chain_hash", flat=True).first()
    if prev is None:  # purged by retention: the checkpoint kept at the new start holds its signed head hash
        prev = AuditCheckpoint.objects.filter(tree_size=from_seq - 1).values_list("head_hash", flat=True).first()
    return from_seq, prev or hashing.GENESIS_HASH


def unsealed_count() -> int:
    return AuditLog.objects.filter(seq__isnull=True).count()


def checkpoints(*, up_to=None):
    """Every checkpoint (or those covering at most `up_to` entries) as signed statements."""
    qs = AuditCheckpoint.objects.order_by("tree_size")
    if up_to is not None:
        qs = qs.filter(tree_size__lte=up_to)
    return [cp.statement_fields() for cp in qs]


def record_hashes(up_to: int) -> list[bytes]:
    """The Merkle leaves (raw record hashes) of seq 1..up_to."""
    qs = (
        AuditLog.objects.filter(seq__isnull=False, seq__lte=up_to)
        .order_by("seq")
        .values_list("record_sha256", flat=True)
    )
    return [bytes.fromhex(h) for h in qs.iterator(chunk_size=10000)]


def inclusion_proof_bundle(entry_id: int) -> dict:
    """Everything an offline verifier needs to prove one entry is in a signed checkpoint.

    Raises AuditLog.DoesNotExist, or LookupError when the entry is unsealed or no checkpoint covers it yet.
    """
    row = AuditLog.objects.get(pk=entry_id)
    if row.seq is None:
        raise LookupError(f"entry {entry_id} is not sealed yet")
    checkpoint = AuditCheckpoint.objects.filter(tree_size__gte=row.seq).order_by("tree_size").first()
    if checkpoint is None:
        raise LookupError(f"no checkpoint covers entry {entry_id} (seq {row.seq}) yet")
    leaves = record_hashes(checkpoint.tree_size)
    # Read to its end, not next(): a generator left open ends its atomic block with GeneratorExit (a rollback).
    [entry] = chain_entries(from_seq=row.seq, to_seq=row.seq)
    return {
        "format": "tezgah-audit-inclusion-proof",
        "version": 1,
        "entry": entry,
        "leaf_index": row.seq - 1,
        "tree_size": checkpoint.tree_size,
        "proof": [h.hex() for h in merkle.inclusion_proof(row.seq - 1, leaves)],
        "checkpoint": checkpoint.statement_fields(),
    }


def _export_filter(filters) -> Q:
    q = Q()
    if filters.get("date_from"):
        q &= Q(ts__gte=filters["date_from"])
    if filters.get("date_to"):
        q &= Q(ts__lt=filters["date_to"])
    if filters.get("actor"):
        q &= Q(actor_id=filters["actor"])
    if filters.get("action"):
        q &= Q(action=filters["action"])
    return q


_BEFORE_PAYLOAD = ("id", "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id")
_AFTER_PAYLOAD = ("payload_sha256", "tenant_id", "request_id", "client_ip", "version", "record_sha256", "prev_hash",
                  "chain_hash")  # fmt: skip


def _entry_line(entry) -> str:
    """An export entry line: json.dumps' layout (as before), but the payload written as its canonical JSON, the
    very bytes payload_sha256 is over, so a verifier can hash them as they stand (docs/audit.md, "Forensic
    export"). Still one JSON object: any JSON reader reads the same entry."""
    head = json.dumps({"type": "entry", **{k: entry[k] for k in _BEFORE_PAYLOAD}}, ensure_ascii=False, default=str)
    tail = json.dumps({k: entry[k] for k in _AFTER_PAYLOAD}, ensure_ascii=False, default=str)
    payload = hashing.canonical_json_fast(entry["payload"]).decode()
    return f'{head[:-1]}, "payload": {payload}, {tail[1:]}'


def export_lines(filters: dict, *, user=None):
    """A forensic export as JSON lines: a header, every sealed entry in seq order (in full when it matches
    `filters` and `user` may read it, otherwise only its hashes, so the range still chains to its
    checkpoints), the checkpoints, and an end line with the counts (a file without it was cut short).

    `user` None is the operator's command (everything); over HTTP it is the requester (entries_visible_to).
    The header's `filters` say which tenants the file holds in full (`tenants`, `tenantless`).
    """
    head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first() or 0
    start = retained_start()
    shown = {k: str(v) for k, v in filters.items() if v}
    if user is not None:
        shown.update(export_scope(user))
    header = {
        "format": "tezgah-audit-export", "version": 1, "generated_at": hashing.format_ts(timezone.now()),
        "filters": shown, "last_seq": head,
    }  # fmt: skip
    if start > 1:  # older entries were purged by retention: the checkpoint at start - 1 anchors the file
        header["first_seq"] = start
    yield json.dumps(header, ensure_ascii=False)
    readable = AuditLog.objects.all() if user is None else entries_visible_to(user)
    matching = set(
        readable.filter(_export_filter(filters), seq__isnull=False, seq__lte=head).values_list("seq", flat=True)
    )
    full = hashes = 0
    for entry in chain_entries(from_seq=start, to_seq=head):
        if entry["seq"] in matching:
            full += 1
            yield _entry_line(entry)
        else:
            hashes += 1
            stub = {k: entry[k] for k in ("seq", "record_sha256", "prev_hash", "chain_hash")}
            yield json.dumps({"type": "hash", **stub})
    for checkpoint in checkpoints(up_to=head):
        yield json.dumps({"type": "checkpoint", **checkpoint})
    yield json.dumps({"type": "end", "entries": full, "hashes": hashes})


EXPORT_CSV_COLUMNS = (
    "type", "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload",
    "payload_sha256", "tenant_id", "request_id", "client_ip", "version", "record_sha256", "prev_hash",
    "chain_hash", "tree_size", "head_hash", "merkle_root", "key_id", "signature",
)  # fmt: skip


def export_csv_rows(lines):
    """The export's JSON lines as CSV rows: one header row, then entries, hash stubs and checkpoints."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_CSV_COLUMNS)
    for line in lines:
        item = json.loads(line)
        if "format" in item:
            continue
        row = {**item}
        if "payload" in row:
            row["payload"] = json.dumps(row["payload"], sort_keys=True, ensure_ascii=False)
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in EXPORT_CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
