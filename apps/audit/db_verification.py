"""Verify the chain in the database: streamed, resumable from a checkpoint, split across processes."""

import multiprocessing
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections
from django.db.models import F

from . import hashing, selectors, signatures, sql_verification
from .merkle import Frontier
from .models import AuditCheckpoint, AuditLog
from .verification import ChainReport, Finding, cut_before_witness, verify_entries


@dataclass
class Segment:
    first_seq: int
    last_seq: int | None  # None: to the head
    prev_hash: str
    frontier: dict | None
    checkpoints: list
    witness: dict | None = None


def _start(from_seq):
    """Where a walk from `from_seq` starts: expected seq, previous chain hash, and the Merkle frontier
    when a checkpoint ends right before it (so its roots can still be checked)."""
    expected, prev = selectors.chain_start(from_seq)
    if expected == 1:
        return expected, prev, Frontier()
    before = AuditCheckpoint.objects.filter(tree_size=expected - 1).first()
    return expected, prev, Frontier.from_json(before.frontier) if before else None


@contextmanager
def _walk(first_seq, last_seq, prev_hash, workers=None):
    """verify_entries' input for [first_seq, last_seq] after `prev_hash`: on PostgreSQL chunks the database checked
    (apps/audit/sql_verification.py), elsewhere entry dicts."""
    if connections["default"].vendor == "postgresql":
        walk = sql_verification.digests(first_seq=first_seq, last_seq=last_seq, prev_hash=prev_hash, workers=workers)
        with walk as chunks:
            yield {"entries": (), "chunks": chunks}
        return
    yield {"entries": selectors.chain_entries(from_seq=first_seq, to_seq=last_seq, chunk_size=20000)}


def _verify_segment(segment: Segment):
    connections.close_all()  # a forked worker must not share its parent's connection
    try:
        # One chunk query at a time in each process: the processes are the parallelism here.
        with _walk(segment.first_seq, segment.last_seq, segment.prev_hash, workers=1) as walk:
            report = verify_entries(
                **walk,
                expected_seq=segment.first_seq,
                prev_hash=segment.prev_hash,
                checkpoints=segment.checkpoints,
                frontier=Frontier.from_json(segment.frontier) if segment.frontier is not None else None,
                witness=segment.witness,
            )
    finally:
        connections.close_all()
    return report


def _segments(checkpoints, processes, from_seq, to_seq):
    """Cut [from_seq, to_seq] at checkpoint boundaries into about `processes` pieces of equal size."""
    inside = [cp for cp in checkpoints if cp["tree_size"] >= from_seq and (to_seq is None or cp["tree_size"] < to_seq)]
    if processes <= 1 or not inside:
        return None
    head = to_seq or inside[-1]["tree_size"]
    step = max(1, (head - from_seq + 1) // processes)
    cuts, next_cut = [], from_seq - 1 + step
    for cp in inside:
        if cp["tree_size"] >= next_cut and len(cuts) < processes - 1:
            cuts.append(cp)
            next_cut = cp["tree_size"] + step
    return cuts


def _witness_finding(witness, public_key) -> Finding | None:
    """Whether the database still reaches the witnessed checkpoint, whatever range the walk covers."""
    if public_key is not None and not signatures.verify(public_key, witness):
        return Finding(witness["tree_size"], None, "the witnessed checkpoint's signature does not verify with "
                       "this key", witnessed=True)  # fmt: skip
    head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first() or 0
    head = max(head, selectors.retained_start() - 1)  # a purge through the last checkpoint leaves no entry
    if head < witness["tree_size"]:
        return cut_before_witness(witness, head)
    row = AuditLog.objects.filter(seq=witness["tree_size"]).values("id", "chain_hash").first()
    if row is None and witness["tree_size"] < selectors.retained_start():
        # Purged by retention in whole segments: the checkpoint at that size is kept (and signed) instead.
        row = AuditCheckpoint.objects.filter(tree_size=witness["tree_size"]).values("id", chain_hash=F("head_hash"))
        row = row.first()
    if row is None:
        return Finding(witness["tree_size"], None, f"gap or reorder: no entry at seq {witness['tree_size']}, the "
                       "witnessed checkpoint's size", witnessed=True)  # fmt: skip
    if row["chain_hash"] != witness["head_hash"]:
        return Finding(witness["tree_size"], row["id"], f"the witnessed checkpoint at {witness['tree_size']} "
                       "entries: the chain's head hash differs (a rewritten chain)", witnessed=True)  # fmt: skip
    return None


def verify_database(
    *, from_seq=None, to_seq=None, public_key=None, processes=1, witness=None, db_connections=None
) -> ChainReport:
    """The whole check behind `verify_audit_chain` and the admin's "verify now".

    `db_connections`: database connections checking chunks at once in one process (PostgreSQL; default
    AUDIT_VERIFY_CONNECTIONS); `processes` > 1 splits the walk at checkpoints instead, one chunk query at a
    time in each.

    `witness` is a trusted checkpoint kept outside the database (apps/audit/witness.py): the chain must
    reach its size with its head hash (and Merkle root, when the walk passes it), or the check fails.
    """
    # After a retention purge the walk starts at the kept checkpoint's next entry (selectors.retained_start).
    from_seq = max(from_seq or 1, selectors.retained_start())
    if witness is not None:
        finding = _witness_finding(witness, public_key)
        if finding:
            return ChainReport(finding=finding)
    all_checkpoints = selectors.checkpoints()
    expected, prev, frontier = _start(from_seq)
    if witness is not None and not expected <= witness["tree_size"] <= (to_seq or witness["tree_size"]):
        witness = None  # outside this walk: checked above by its head hash alone
    if public_key is not None:
        # Every checkpoint's signature first, once, so workers trust the heads and frontiers they start from.
        signed = verify_entries(iter(()), checkpoints=all_checkpoints, public_key=public_key)
        if signed.finding and "signature" in signed.finding.problem:
            return signed
    checkpoints = [cp for cp in all_checkpoints if to_seq is None or cp["tree_size"] <= to_seq]
    cuts = _segments(checkpoints, processes, expected, to_seq)
    if not cuts:
        with _walk(expected, to_seq, prev, workers=db_connections) as walk:
            return verify_entries(
                **walk, expected_seq=expected, prev_hash=prev,
                checkpoints=[c for c in checkpoints if c["tree_size"] >= expected], frontier=frontier, witness=witness,
            )  # fmt: skip
    frontiers = dict(AuditCheckpoint.objects.filter(tree_size__in=[c["tree_size"] for c in cuts]).values_list(
        "tree_size", "frontier"))  # fmt: skip
    segments, start, start_prev, start_frontier = [], expected, prev, frontier.to_json() if frontier else None
    for cut in [*cuts, None]:
        end = cut["tree_size"] if cut else to_seq
        owned = [c for c in checkpoints if c["tree_size"] >= start and (end is None or c["tree_size"] <= end)]
        covers = witness and witness["tree_size"] >= start and (end is None or witness["tree_size"] <= end)
        inside = witness if covers else None
        segments.append(Segment(start, end, start_prev, start_frontier, owned, inside))
        if cut:
            start, start_prev, start_frontier = cut["tree_size"] + 1, cut["head_hash"], frontiers[cut["tree_size"]]
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(len(segments)) as pool:
        reports = pool.map(_verify_segment, segments)
    total = ChainReport(head_hash=hashing.GENESIS_HASH)
    for report in reports:
        total.checked += report.checked
        total.checkpoints_checked += report.checkpoints_checked
        total.first_seq = total.first_seq or report.first_seq
        total.last_seq = report.last_seq or total.last_seq
        total.head_hash = report.head_hash
        if report.finding:
            total.finding = report.finding
            break
    return total
