"""Offline verifier for audit exports and inclusion proofs: the Python standard library plus `cryptography`.

    python -m apps.audit.verify EXPORT.jsonl --public-key audit-public.pem
    python -m apps.audit.verify PROOF.json --public-key audit-public.pem

Exit status 0: intact; 1: a problem (printed); 2: the file or key cannot be read. Needs no Django and no
database, only this folder (apps/audit) and a copy of the public key.
"""

import argparse
import json
import sys
from pathlib import Path

from . import hashing, merkle, signatures
from .verification import verify_entries

EXPORT_FORMAT = "tezgah-audit-export"
PROOF_FORMAT = "tezgah-audit-inclusion-proof"


class Unreadable(Exception):
    """The input is not something this verifier understands."""


def _lines(path: Path):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise Unreadable(f"line {number} is not JSON: {exc}") from None


def verify_export(path: Path, public_key) -> str | None:
    """None when the export is intact, else the first problem. Reads the file twice; never all of it at once."""
    checkpoints, end, header = [], None, None
    for number, item in _lines(path):
        if number == 1:
            header = item
            if header.get("format") != EXPORT_FORMAT or header.get("version") != 1:
                raise Unreadable("not a version-1 Tezgah audit export")
        elif item.get("type") == "checkpoint":
            checkpoints.append(item)
        elif item.get("type") == "end":
            end = item
    if end is None:
        return "the export has no end line: it was cut short"
    counted = {"entry": 0, "hash": 0}

    def entries():
        for number, item in _lines(path):
            if number > 1 and item.get("type") in counted:
                counted[item["type"]] += 1
                yield item

    report = verify_entries(entries(), checkpoints=checkpoints, public_key=public_key)
    if not report.ok:
        return f"seq {report.finding.seq}: {report.finding.problem}"
    if (counted["entry"], counted["hash"]) != (end["entries"], end["hashes"]):
        return "the entry counts do not match the end line"
    if report.last_seq != header.get("last_seq", report.last_seq):
        return f"the header says the chain ends at {header['last_seq']}, the file at {report.last_seq}"
    return None


def verify_proof(path: Path, public_key) -> str | None:
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise Unreadable(f"not JSON: {exc}") from None
    if bundle.get("format") != PROOF_FORMAT:
        raise Unreadable("not a Tezgah inclusion proof")
    entry, checkpoint = bundle["entry"], bundle["checkpoint"]
    if hashing.payload_sha256(entry["payload"]) != entry["payload_sha256"]:
        return "the entry's payload does not match its payload_sha256"
    record = hashing.record_sha256(entry)
    if record != entry["record_sha256"]:
        return "the entry's fields do not match its record hash"
    if not signatures.verify(public_key, checkpoint):
        return "bad checkpoint signature"
    if bundle["tree_size"] != checkpoint["tree_size"] or bundle["leaf_index"] != entry["seq"] - 1:
        return "the proof's position does not match the entry and checkpoint"
    proof = [bytes.fromhex(h) for h in bundle["proof"]]
    root = bytes.fromhex(checkpoint["merkle_root"])
    if not merkle.verify_inclusion(bytes.fromhex(record), bundle["leaf_index"], bundle["tree_size"], proof, root):
        return "the inclusion proof does not lead to the checkpoint's Merkle root"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.audit.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="an export (.jsonl) or an inclusion proof (.json)")
    parser.add_argument("--public-key", required=True, help="PEM file, or base64 of the raw Ed25519 public key")
    args = parser.parse_args(argv)
    try:
        key_text = Path(args.public_key).read_text() if Path(args.public_key).is_file() else args.public_key
        public_key = signatures.load_public_key(key_text)
        with args.file.open(encoding="utf-8") as handle:
            first = handle.read(200)
        is_proof = PROOF_FORMAT in first
        problem = verify_proof(args.file, public_key) if is_proof else verify_export(args.file, public_key)
    except (OSError, ValueError, KeyError, Unreadable) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    if problem:
        print(f"FAILED: {problem}")
        return 1
    print(
        "OK: inclusion proven in a signed checkpoint" if is_proof else "OK: export intact and matches its checkpoints"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
