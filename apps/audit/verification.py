"""Walk the chain and say whether it is intact, and if not, where and how it first breaks."""

from dataclasses import dataclass

from . import hashing


@dataclass
class Finding:
    seq: int | None
    entry_id: int | None
    problem: str


@dataclass
class ChainReport:
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = hashing.GENESIS_HASH
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None


def verify_entries(entries, *, expected_seq=1, prev_hash=hashing.GENESIS_HASH) -> ChainReport:
    """Check consecutive entries (dicts with the record fields, `payload`, `id` and the three hashes).

    Stops at the first problem. Used on the database and, by apps.audit.verify, on an export file.
    """
    report = ChainReport()
    for entry in entries:
        seq = entry["seq"]
        problem = None
        if seq != expected_seq:
            problem = f"gap or reorder: expected seq {expected_seq}, found {seq}"
        elif "payload" in entry and hashing.payload_sha256(entry["payload"]) != entry["payload_sha256"]:
            problem = "changed content: the payload does not match payload_sha256"
        elif hashing.record_sha256(entry) != entry["record_sha256"]:
            problem = "changed content: the record hash does not match the entry's fields"
        elif entry["prev_hash"] != prev_hash:
            problem = "broken link: prev_hash is not the previous entry's chain_hash"
        elif hashing.chain_hash(prev_hash, entry["record_sha256"]) != entry["chain_hash"]:
            problem = "broken link: chain_hash is not sha256(prev_hash || record_sha256)"
        if problem:
            report.finding = Finding(seq=seq, entry_id=entry.get("id"), problem=problem)
            return report
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        report.checked += 1
        prev_hash = entry["chain_hash"]
        expected_seq += 1
    report.head_hash = prev_hash
    return report
