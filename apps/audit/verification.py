"""Walk the chain and its checkpoints and say whether they are intact, and if not, where they first break.

Standard library plus `cryptography` only: apps.audit.verify runs this on an export without Django.
"""

import hashlib
import itertools
import json
import json.scanner
from dataclasses import dataclass

from . import hashing
from .merkle import Frontier

# Entries checked together (see verify_entries).
CHUNK = 4096


@dataclass
class Finding:
    seq: int | None
    entry_id: int | None
    problem: str
    checkpoint: int | None = None  # tree_size of the checkpoint the problem is about, if any
    witnessed: bool = False  # the problem is about the witnessed (trusted) checkpoint
    position: int | None = None  # 0-based place in the walk of the entry the problem was found at


@dataclass
class ChainReport:
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = hashing.GENESIS_HASH
    checkpoints_checked: int = 0
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None


CANONICAL_PROBLEM = "changed content: the payload differs from the canonical payload stored with it"


def _canonical_differs(entry) -> bool:
    """Whether the canonical payload stored beside the payload (database rows only) says something else."""
    canonical = entry.get("payload_canonical")
    if canonical is None:
        return False
    return entry.get("payload_matches") is False or hashing.canonical_json_fast(entry["payload"]) != canonical.encode()


def _content_problem(entry):
    try:
        if hashing.payload_sha256(entry["payload"]) != entry["payload_sha256"]:
            return "changed content: the payload does not match payload_sha256"
        if hashing.record_sha256(entry) != entry["record_sha256"]:
            return "changed content: the record hash does not match the entry's fields"
        if _canonical_differs(entry):
            return CANONICAL_PROBLEM
    except (ValueError, RecursionError) as exc:  # e.g. a lone surrogate, or an unknown schema version
        return f"changed content: the entry cannot be hashed ({exc})"
    return None


def _entry_problem(entry, expected_seq, prev_hash):
    if entry["seq"] != expected_seq:
        return f"gap or reorder: expected seq {expected_seq}, found {entry['seq']}"
    if entry.get("type") != "hash":  # a hash stub (left out of a filtered export) has only its hashes to link
        problem = _content_problem(entry)
        if problem:
            return problem
    if entry["prev_hash"] != prev_hash:
        return "broken link: prev_hash is not the previous entry's chain_hash"
    if hashlib.sha256((prev_hash + entry["record_sha256"]).encode("ascii")).hexdigest() != entry["chain_hash"]:
        return "broken link: chain_hash is not sha256(prev_hash || record_sha256)"
    return None


def _bad_signature(checkpoints, public_key):
    from . import signatures

    for cp in checkpoints:
        if not signatures.verify(public_key, cp):
            return Finding(
                cp["tree_size"], None, f"bad checkpoint signature (checkpoint at {cp['tree_size']} entries)",
                checkpoint=cp["tree_size"],
            )  # fmt: skip
    return None


def _witness_problem(witness, seq, head_hash, frontier):
    if witness["head_hash"] != head_hash:
        return f"the witnessed checkpoint at {seq} entries: the chain's head hash differs (a rewritten chain)"
    if frontier is not None and witness["merkle_root"] != frontier.root().hex():
        return f"the witnessed checkpoint at {seq} entries: the Merkle root differs (a rewritten chain)"
    return None


def cut_before_witness(witness, last_seq) -> Finding:
    """The finding for data that ends before the witnessed checkpoint: its tail was cut off."""
    return Finding(
        last_seq or 0, None,
        f"missing tail before the witnessed checkpoint: the witness covers {witness['tree_size']} entries, the "
        f"chain ends at {last_seq or 0} (entries, and the checkpoints after them, were cut off)",
        witnessed=True,
    )  # fmt: skip


def _chunk_intact(chunk, expected_seq, prev_hash) -> bool:
    """Whether every entry of `chunk` passes _entry_problem, checked column by column (no finding: when this
    says False, or raises, the chunk is walked again entry by entry to find and name the first problem)."""
    sha256 = hashlib.sha256
    n = len(chunk)
    if [e["seq"] for e in chunk] != list(range(expected_seq, expected_seq + n)):
        return False
    full = [e for e in chunk if e.get("type") != "hash"]
    canonical, record_bytes = hashing.canonical_json_fast, hashing.record_bytes
    if [sha256(canonical(e["payload"])).hexdigest() for e in full] != [e["payload_sha256"] for e in full]:
        return False
    if [sha256(record_bytes(e)).hexdigest() for e in full] != [e["record_sha256"] for e in full]:
        return False
    if any(_canonical_differs(e) for e in full if e.get("payload_canonical") is not None):
        return False
    chains = [e["chain_hash"] for e in chunk]
    if [e["prev_hash"] for e in chunk] != [prev_hash, *chains[:-1]]:
        return False
    links = [sha256((e["prev_hash"] + e["record_sha256"]).encode("ascii")).hexdigest() for e in chunk]
    return links == chains


class _Entries:
    """A chunk of entry dicts (an export's lines, or chain_entries)."""

    def __init__(self, entries):
        self.entries = entries

    def __len__(self):
        return len(self.entries)

    def seq(self, i):
        return self.entries[i]["seq"]

    def entry_id(self, i):
        return self.entries[i].get("id")

    def chain_hash(self, i):
        return self.entries[i]["chain_hash"]

    def record_hashes(self, start, stop):
        return [e["record_sha256"] for e in self.entries[start:stop]]

    def leaves(self, start, stop):
        return [bytes.fromhex(e["record_sha256"]) for e in self.entries[start:stop]]

    def intact(self, expected_seq, prev_hash):
        return _chunk_intact(self.entries, expected_seq, prev_hash)

    def dicts(self):
        return self.entries


def payload_loader():
    # json's C scanner straight away; a text it does not read to the end goes through json.loads and its error.
    scan = json.scanner.make_scanner(json.JSONDecoder())

    def loads(text):
        try:
            value, end = scan(text, 0)
        except StopIteration:
            return json.loads(text)
        return value if end == len(text) else json.loads(text)

    return loads


class Rows:
    """A chunk of database rows as selectors.verification_rows gives them (selectors.ROW_FIELDS): the record
    body already assembled, the canonical payload stored with most entries. `load` gives the same entries as
    dicts (selectors.chain_entries) for the walk that names a problem."""

    _loads = staticmethod(payload_loader())

    def __init__(self, rows, load):
        self.rows, self.load = rows, load

    def __len__(self):
        return len(self.rows)

    def seq(self, i):
        return self.rows[i][0]

    def entry_id(self, i):
        return self.rows[i][1]

    def chain_hash(self, i):
        return self.rows[i][9]

    def record_hashes(self, start, stop):
        return [r[7] for r in self.rows[start:stop]]

    def leaves(self, start, stop):
        return [bytes.fromhex(r[7]) for r in self.rows[start:stop]]

    def intact(self, expected_seq, prev_hash):
        """The checks of _chunk_intact over the prepared bytes: sha256 and comparisons, no JSON for most entries.

        (List comprehensions: on Python 3.11 they measured faster here than map() over the columns.)"""
        sha256, rows = hashlib.sha256, self.rows
        if [r[0] for r in rows] != list(range(expected_seq, expected_seq + len(rows))):
            return False
        if not all(r[5] for r in rows):  # the payload column no longer says what its canonical bytes say
            return False
        canonical, loads = hashing.canonical_json_fast, self._loads
        payloads = [
            sha256(r[3].encode() if r[3] is not None else canonical(loads(r[4]))).hexdigest() for r in rows
        ]  # fmt: skip
        if payloads != [r[6] for r in rows]:
            return False
        if [sha256(r[2].encode()).hexdigest() for r in rows] != [r[7] for r in rows]:
            return False
        chains = [r[9] for r in rows]
        if [r[8] for r in rows] != [prev_hash, *chains[:-1]]:
            return False
        return [sha256((r[8] + r[7]).encode("ascii")).hexdigest() for r in rows] == chains

    def dicts(self):
        entries = list(self.load(self.rows[0][0], self.rows[-1][0]))
        by_seq = {r[0]: r for r in self.rows}
        for entry in entries:
            row = by_seq.get(entry["seq"])
            if row is not None:
                entry["payload_canonical"], entry["payload_matches"] = row[3], row[5]
        return entries


def _in_chunks(entries):
    while chunk := list(itertools.islice(entries, CHUNK)):
        yield _Entries(chunk)


def verify_entries(
    entries, *, expected_seq=1, prev_hash=hashing.GENESIS_HASH, checkpoints=(), public_key=None, frontier=None,
    witness=None, chunks=None,
):  # fmt: skip
    """Check consecutive entries (dicts with the record fields, `payload`, `id` and the three hashes).

    With `checkpoints` (dicts as AuditCheckpoint.statement_fields) each one's signature is checked with
    `public_key`, and its head hash is compared; its Merkle root too when the walk starts at seq 1 or is
    given the `frontier` of the tree before `expected_seq`. A checkpoint beyond the last entry means the
    tail was cut off. `witness` is a trusted checkpoint kept outside the data (its signature checked by the
    caller): the walk must reach it with the same head hash (and root), else the tail was cut off or the
    chain rewritten. Stops at the first problem.

    Entries are checked CHUNK at a time, each check over the whole chunk at once (about half the time of
    entry by entry); a chunk that fails is walked again entry by entry, so the finding is the same.

    `chunks` (instead of `entries`): Rows from the database verifier. A chunk whose prepared bytes fail
    is checked again as entry dicts, which decide: the same finding, or intact after all.
    """
    report = ChainReport()
    checkpoints = sorted(checkpoints, key=lambda cp: cp["tree_size"])
    if checkpoints and public_key is not None:
        report.finding = _bad_signature(checkpoints, public_key)
        if report.finding:
            return report
    pending = {cp["tree_size"]: cp for cp in checkpoints}
    if frontier is None and expected_seq == 1:
        frontier = Frontier()
    # Where the walk must look at the Merkle root: each checkpoint and the witness.
    stops = set(pending) | ({witness["tree_size"]} if witness is not None else set())
    if chunks is None:
        chunks = _in_chunks(iter(entries))
    for chunk in chunks:
        try:
            intact = chunk.intact(expected_seq, prev_hash)
        except (ValueError, TypeError, KeyError, RecursionError, AttributeError):
            intact = False
        if not intact and not isinstance(chunk, _Entries):
            chunk = _Entries(chunk.dicts())
            if not len(chunk):  # nothing there after all (the rows of a failed query): the next chunk says what
                continue
            try:
                intact = chunk.intact(expected_seq, prev_hash)
            except (ValueError, TypeError, KeyError, RecursionError, AttributeError):
                intact = False
        if not intact:
            for i, entry in enumerate(chunk.dicts()):
                problem = _entry_problem(entry, expected_seq, prev_hash)
                if problem:
                    report.finding = Finding(
                        seq=entry["seq"], entry_id=entry.get("id"), problem=problem, position=report.checked + i
                    )
                    return report
                prev_hash = entry["chain_hash"]
                expected_seq += 1
            raise AssertionError("a chunk failed its bulk check but every entry passed")  # pragma: no cover
        first = chunk.seq(0)
        last = chunk.seq(len(chunk) - 1)
        offset = report.checked  # the walk's position of chunk[0]
        if report.first_seq is None:
            report.first_seq = first
        report.last_seq = last
        report.checked += len(chunk)
        expected_seq = last + 1
        here = sorted(size for size in stops if first <= size <= last)
        done = 0  # entries of the chunk already in the frontier
        for seq in here:
            at = seq - first
            head, entry_id = chunk.chain_hash(at), chunk.entry_id(at)
            if frontier is not None:
                frontier.extend(chunk.leaves(done, at + 1))
                done = at + 1
            if witness is not None and seq == witness["tree_size"]:
                problem = _witness_problem(witness, seq, head, frontier)
                if problem:
                    report.finding = Finding(seq, entry_id, problem, witnessed=True, position=offset + at)
                    return report
            checkpoint = pending.pop(seq, None)
            if checkpoint is not None:
                report.checkpoints_checked += 1
                if checkpoint["head_hash"] != head:
                    report.finding = Finding(
                        seq, entry_id, f"checkpoint at {seq}: the chain's head hash differs", checkpoint=seq,
                        position=offset + at,
                    )  # fmt: skip
                    return report
                if frontier is not None and checkpoint["merkle_root"] != frontier.root().hex():
                    report.finding = Finding(
                        seq, entry_id, f"checkpoint at {seq}: the Merkle root differs", checkpoint=seq,
                        position=offset + at,
                    )  # fmt: skip
                    return report
        if frontier is not None and done < len(chunk):
            frontier.extend(chunk.leaves(done, len(chunk)))
        prev_hash = chunk.chain_hash(len(chunk) - 1)
    report.head_hash = prev_hash
    beyond = [size for size in pending if report.last_seq is None or size > report.last_seq]
    if beyond:
        report.finding = Finding(
            max(beyond), None,
            f"missing tail after a checkpoint: a checkpoint covers {max(beyond)} entries, the chain ends at "
            f"{report.last_seq or 0}", checkpoint=max(beyond),
        )  # fmt: skip
        return report
    if witness is not None and (report.last_seq or expected_seq - 1) < witness["tree_size"]:
        report.finding = cut_before_witness(witness, report.last_seq or expected_seq - 1)
    return report
