"""Audit reads: the sealed chain as verifier input, streamed from a server-side cursor."""

from . import hashing
from .models import AuditCheckpoint, AuditLog

_COLUMNS = (
    "id", "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload",
    "payload_sha256", "tenant_id", "request_id", "client_ip", "version", "record_sha256", "prev_hash",
    "chain_hash",
)  # fmt: skip


def chain_entries(*, from_seq=None, to_seq=None, chunk_size=5000):
    """Sealed entries in seq order as plain dicts (ts formatted as hashed), without loading them all."""
    qs = AuditLog.objects.filter(seq__isnull=False).order_by("seq")
    if from_seq is not None:
        qs = qs.filter(seq__gte=from_seq)
    if to_seq is not None:
        qs = qs.filter(seq__lte=to_seq)
    for row in qs.values_list(*_COLUMNS).iterator(chunk_size=chunk_size):
        entry = dict(zip(_COLUMNS, row, strict=True))
        entry["ts"] = hashing.format_ts(entry["ts"])
        yield entry


def chain_start(from_seq):
    """(expected seq, previous chain hash) for a walk starting at `from_seq`."""
    if not from_seq or from_seq <= 1:
        return 1, hashing.GENESIS_HASH
    prev = AuditLog.objects.filter(seq=from_seq - 1).values_list("chain_hash", flat=True).first()
    return from_seq, prev or hashing.GENESIS_HASH


def unsealed_count() -> int:
    return AuditLog.objects.filter(seq__isnull=True).count()


def checkpoints(*, up_to=None):
    """Every checkpoint (or those covering at most `up_to` entries) as signed statements."""
    qs = AuditCheckpoint.objects.order_by("tree_size")
    if up_to is not None:
        qs = qs.filter(tree_size__lte=up_to)
    return [cp.statement_fields() for cp in qs]
