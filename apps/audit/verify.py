"""Offline verifier for audit exports and inclusion proofs: the Python standard library plus `cryptography`.

    python -m apps.audit.verify EXPORT.jsonl --public-key audit-public.pem [--trusted-checkpoint WITNESS.json]
    python -m apps.audit.verify PROOF.json --public-key audit-public.pem

Exit status 0: intact; 1: a problem in the file (printed with its line); 2: the file, the key or the trusted
checkpoint cannot be read (or the export's format version is not one this verifier knows). Needs no Django
and no database, only this folder (apps/audit) and a copy of the public key.
"""

import argparse
import collections
import json
import math
import re
import sys
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from . import hashing, merkle, signatures, witness
from .verification import CHUNK, verify_entries

EXPORT_FORMAT = "tezgah-audit-export"
PROOF_FORMAT = "tezgah-audit-inclusion-proof"
PROOF_SIZE_LIMIT = 16 * 1024 * 1024  # a proof is a few KiB; anything bigger is not one

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_TEXT_FIELDS = ("actor_type", "actor_id", "action", "object_type", "object_id", "request_id", "client_ip")
_HASH_FIELDS = ("record_sha256", "prev_hash", "chain_hash")
ENTRY_FIELDS = frozenset(
    {"type", "id", "seq", "ts", "payload", "payload_sha256", "tenant_id", "version", *_TEXT_FIELDS, *_HASH_FIELDS}
)
HASH_STUB_FIELDS = frozenset({"type", "seq", *_HASH_FIELDS})
END_FIELDS = frozenset({"type", "entries", "hashes"})


class Unreadable(Exception):
    """The file, key or trusted checkpoint cannot be used at all: exit 2."""


class Malformed(Exception):
    """The file is not an intact export or proof: exit 1. The message names the line."""


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_duplicate_keys(pairs):
    item = dict(pairs)
    if len(item) != len(pairs):  # rare: find the key to name it
        seen = set()
        for key, _value in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice")
            seen.add(key)
    return item


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def loads(text):
    """Strict JSON: no NaN or Infinity, no duplicate keys (a reader could pick either value)."""
    if text.startswith("\ufeff"):
        return json.loads(text)  # json.loads' own error for a byte order mark
    return _DECODER.decode(text)


# json.loads with these hooks builds a decoder on every call; one is enough.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant, parse_float=_finite)


def entry_problem(item, *, typed=True) -> str | None:
    """What is wrong with the fields of a full entry (an export's `entry` line, or a proof's `entry`), or None."""
    fields = ENTRY_FIELDS if typed else ENTRY_FIELDS - {"type"}
    missing, unknown = sorted(fields - item.keys()), sorted(item.keys() - fields)
    if missing:
        return f"entry without {', '.join(missing)}"
    if unknown:
        return f"entry with unknown fields {', '.join(unknown)}"
    if not _integer(item["id"]):
        return "id must be an integer"
    if not _integer(item["seq"]) or item["seq"] < 1:
        return "seq must be an integer of at least 1"
    if not isinstance(item["ts"], str) or not _TS.fullmatch(item["ts"]):
        return "ts must be a UTC time like 2026-11-22T21:30:00.000000Z"
    for name in _TEXT_FIELDS:
        if not isinstance(item[name], str):
            return f"{name} must be a string"
    for name in ("payload_sha256", *_HASH_FIELDS):
        if not isinstance(item[name], str) or not _HEX64.fullmatch(item[name]):
            return f"{name} must be 64 lower-case hex digits"
    if item["tenant_id"] is not None and not _integer(item["tenant_id"]):
        return "tenant_id must be an integer or null"
    if item["version"] not in hashing.SCHEMA_VERSIONS or not _integer(item["version"]):
        return "version must be 1 or 2 (the record schema versions)"
    return None


def _stub_problem(item) -> str | None:
    missing, unknown = sorted(HASH_STUB_FIELDS - item.keys()), sorted(item.keys() - HASH_STUB_FIELDS)
    if missing:
        return f"hash line without {', '.join(missing)}"
    if unknown:
        return f"hash line with unknown fields {', '.join(unknown)} (a left-out entry has only its hashes)"
    if not _integer(item["seq"]) or item["seq"] < 1:
        return "seq must be an integer of at least 1"
    for name in _HASH_FIELDS:
        if not isinstance(item[name], str) or not _HEX64.fullmatch(item[name]):
            return f"{name} must be 64 lower-case hex digits"
    return None


def _end_problem(item) -> str | None:
    missing, unknown = sorted(END_FIELDS - item.keys()), sorted(item.keys() - END_FIELDS)
    if missing:
        return f"end line without {', '.join(missing)}"
    if unknown:
        return f"end line with unknown fields {', '.join(unknown)}"
    for name in ("entries", "hashes"):
        if not _integer(item[name]) or item[name] < 0:
            return f"{name} must be a non-negative integer"
    return None


LINE_CHECKS = {
    "entry": entry_problem,
    "hash": _stub_problem,
    "checkpoint": witness.checkpoint_problem,
    "end": _end_problem,
}


def _header(number, item):
    if item.get("format") != EXPORT_FORMAT:
        raise Malformed(f"line {number}: not the header of a Tezgah audit export (format {EXPORT_FORMAT!r})")
    version = item.get("version")
    if _integer(version) and version != 1:
        raise Unreadable(f"line {number}: export format version {version}; this verifier reads version 1")
    if version != 1 or not _integer(version):
        raise Malformed(f"line {number}: the header's version must be the integer 1")
    if not _integer(item.get("last_seq")) or item["last_seq"] < 0:
        raise Malformed(f"line {number}: the header's last_seq must be a non-negative integer")
    if not isinstance(item.get("filters", {}), dict):
        raise Malformed(f"line {number}: the header's filters must be an object")
    if not isinstance(item.get("generated_at", ""), str):
        raise Malformed(f"line {number}: the header's generated_at must be a string")
    return item


# An entry line exactly as export_lines writes it (json.dumps' default separators, the fields in that order),
# with text that needs no escapes: read by one match instead of a JSON parse and entry_problem's checks. The
# payload is the only part left to parse (strictly, by _DECODER). No string after the payload can hold a
# quote, so there is one place only where the payload can end (the lazy match finds it without scanning the
# line back). Any line this does not match is read the general way, which names the same problem or accepts
# the same entry.
_JSON_TEXT = r'"([^"\\\x00-\x1f]*)"'
_JSON_HEX = r'"([0-9a-f]{64})"'
_FAST_ENTRY = re.compile(
    r'\{"type": "entry", "id": (0|-?[1-9][0-9]*), "seq": ([1-9][0-9]*), '
    r'"ts": "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z)", '
    + ", ".join(f'"{name}": {_JSON_TEXT}' for name in ("actor_type", "actor_id", "action", "object_type", "object_id"))
    + r', "payload": (.*?), "payload_sha256": '
    + _JSON_HEX
    + r', "tenant_id": (null|0|-?[1-9][0-9]*), '
    + f'"request_id": {_JSON_TEXT}, "client_ip": {_JSON_TEXT}, "version": ([12]), '
    + ", ".join(f'"{name}": {_JSON_HEX}' for name in _HASH_FIELDS)
    + r"\}\n",
    re.S,
)


def _fast_entry(text, *, build=True):
    """The entry of a line in export_lines' own layout, already known to pass entry_problem; else None.

    `build` False: only whether it is one (the structure pass keeps nothing of an entry line)."""
    match = _FAST_ENTRY.fullmatch(text)
    if match is None:
        return None
    (entry_id, seq, ts, actor_type, actor_id, action, object_type, object_id, payload, payload_sha256, tenant,
     request_id, client_ip, version, record_sha256, prev_hash, chain_hash) = match.groups()  # fmt: skip
    try:
        payload = _DECODER.decode(payload)
    except (ValueError, RecursionError):
        return None  # the general reader names it
    if not build:
        return _CHECKED
    return {
        "type": "entry", "id": int(entry_id), "seq": int(seq), "ts": ts, "actor_type": actor_type,
        "actor_id": actor_id, "action": action, "object_type": object_type, "object_id": object_id,
        "payload": payload, "payload_sha256": payload_sha256, "tenant_id": None if tenant == "null" else int(tenant),
        "request_id": request_id, "client_ip": client_ip, "version": int(version), "record_sha256": record_sha256,
        "prev_hash": prev_hash, "chain_hash": chain_hash,
    }  # fmt: skip


_CHECKED = {"type": "entry"}  # what the structure pass keeps of an entry line read fast


def _lines(path: Path, *, build=True):
    """(line number, JSON object, checked) for every line; Malformed for a line that is cut off, blank or not an
    object. `checked`: an entry line whose fields were checked on the way (_fast_entry)."""
    with path.open("rb") as handle:
        number = 0
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                raise Malformed(f"line {number} is cut off (no newline at its end): the file was cut short")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Malformed(f"line {number} is not UTF-8: {exc}") from None
            if text.startswith('{"type": "entry", ') and (item := _fast_entry(text, build=build)) is not None:
                yield number, item, True
                continue
            if not text.strip():
                raise Malformed(f"line {number} is blank")
            try:
                item = loads(text)
            except RecursionError:
                raise Malformed(f"line {number} is nested too deeply") from None
            except ValueError as exc:
                raise Malformed(f"line {number} is not JSON: {exc}") from None
            if not isinstance(item, dict):
                raise Malformed(f"line {number} is not a JSON object")
            yield number, item, False
        if number == 0:
            raise Malformed("line 1: the file is empty: no header")


def _records(path: Path, *, build=True):
    """(line number, type, item) for every line after the header, each checked for its type's fields and its
    place: header, entries and hash lines, checkpoints, end, nothing after."""
    stage, end_at = "entries", None
    for number, item, checked in _lines(path, build=build):
        if number == 1:
            yield number, "header", _header(number, item)
            continue
        kind = item.get("type")
        if stage == "end":
            raise Malformed(f"line {number}: a line after the end line (line {end_at}): the end line must be last")
        if not isinstance(kind, str) or kind not in LINE_CHECKS:
            raise Malformed(
                f"line {number}: unknown line type {kind!r} (an export has entry, hash, checkpoint and end lines)"
            )
        problem = None if checked else LINE_CHECKS[kind](item)
        if problem:
            raise Malformed(f"line {number}: {problem}")
        if kind in ("entry", "hash") and stage != "entries":
            raise Malformed(f"line {number}: an {kind} line after the checkpoints (the order is header, entries, "
                            "checkpoints, end)")  # fmt: skip
        if kind == "checkpoint":
            stage = "checkpoints"
        if kind == "end":
            stage, end_at = "end", number
        yield number, kind, item


def verify_export(path: Path, public_key, trusted=None) -> str | None:
    """None when the export is intact (and reaches `trusted`, a witnessed checkpoint), else the first problem.

    One pass when the file proves intact that way (fast.verify_export_fast); otherwise, and to name any
    problem, the general reading below, which is the definition.
    """
    from .fast_export import verify_export_fast

    if verify_export_fast(path, public_key, trusted):
        return None
    return verify_export_general(path, public_key, trusted)


def verify_export_general(path: Path, public_key, trusted=None) -> str | None:
    """verify_export the general way: reads the file twice (structure and checkpoints, then the chain); never
    all of it at once. Names the first problem, at its line."""
    header, end, checkpoints, cp_lines, last_line = None, None, [], {}, 1
    for number, kind, item in _records(path, build=False):  # entries only counted here, not kept
        last_line = number
        if kind == "header":
            header = item
        elif kind == "checkpoint":
            if checkpoints and item["tree_size"] <= checkpoints[-1]["tree_size"]:
                return (f"line {number}: the checkpoint at {item['tree_size']} entries is not after the one before it "
                        f"(at {checkpoints[-1]['tree_size']})")  # fmt: skip
            checkpoints.append(item)
            cp_lines[item["tree_size"]] = number
        elif kind == "end":
            end = item, number
    if end is None:
        return f"the export has no end line: it was cut short after line {last_line}"
    counted = {"entry": 0, "hash": 0}
    at = {"line": 1}
    # verify_entries reads up to a chunk ahead of the entry it checks: the lines of the last two chunks,
    # by the entry's place in the walk (Finding.position).
    recent = collections.deque(maxlen=2 * CHUNK)

    def entries():
        for number, kind, item in _records(path):
            if kind in counted:
                counted[kind] += 1
                at["line"] = number
                recent.append(number)
                yield item

    start = {}
    first_seq = header.get("first_seq", 1)
    if first_seq != 1:  # older entries purged by retention: start from the signed checkpoint right before
        anchor = next((cp for cp in checkpoints if _integer(first_seq) and cp["tree_size"] == first_seq - 1), None)
        if anchor is None:
            return f"line 1: no checkpoint at {first_seq!r} - 1 entries anchors the header's first_seq"
        start = {"expected_seq": first_seq, "prev_hash": anchor["head_hash"]}
        if trusted is not None and trusted["tree_size"] < first_seq:  # purged: its checkpoint line must match
            kept = next((cp for cp in checkpoints if cp["tree_size"] == trusted["tree_size"]), None)
            if kept is None or kept["head_hash"] != trusted["head_hash"]:
                return f"line 1: the witnessed checkpoint at {trusted['tree_size']} entries is not among the file's"
            trusted = None
    report = verify_entries(entries(), checkpoints=checkpoints, public_key=public_key, witness=trusted, **start)
    if not report.ok:
        f = report.finding
        read = counted["entry"] + counted["hash"]  # recent[-1] is the line of the walk's entry read - 1
        entry_line = at["line"]
        if f.position is not None and 0 <= read - 1 - f.position < len(recent):
            entry_line = recent[len(recent) - (read - f.position)]
        if f.witnessed:
            return f"line {entry_line} (seq {f.seq}): {f.problem} (--trusted-checkpoint)"
        line = cp_lines.get(f.checkpoint, entry_line)
        return f"line {line} (seq {f.seq}): {f.problem}"
    (end_line, end_number), last_seq = end, report.last_seq or 0
    if (counted["entry"], counted["hash"]) != (end_line["entries"], end_line["hashes"]):
        return (f"line {end_number}: the end line counts {end_line['entries']} entries and {end_line['hashes']} "
                f"hashes, the file has {counted['entry']} and {counted['hash']}")  # fmt: skip
    if last_seq != header["last_seq"]:
        return f"line 1: the header says the chain ends at seq {header['last_seq']}, the file at {last_seq}"
    return None


def _proof_problem(bundle) -> str | None:
    expected = {"format", "version", "entry", "leaf_index", "tree_size", "proof", "checkpoint"}
    missing, unknown = sorted(expected - bundle.keys()), sorted(bundle.keys() - expected)
    if missing:
        return f"the proof has no {', '.join(missing)}"
    if unknown:
        return f"the proof has unknown keys {', '.join(unknown)}"
    if bundle["version"] != 1 or not _integer(bundle["version"]):
        return "the proof's version must be the integer 1"
    if not isinstance(bundle["entry"], dict):
        return "entry must be an object"
    problem = entry_problem(bundle["entry"], typed=False)
    if problem:
        return f"entry: {problem}"
    problem = witness.checkpoint_problem(bundle["checkpoint"], typed=False)
    if problem:
        return f"checkpoint: {problem}"
    for name in ("leaf_index", "tree_size"):
        if not _integer(bundle[name]) or bundle[name] < 0:
            return f"{name} must be a non-negative integer"
    proof = bundle["proof"]
    if not isinstance(proof, list) or not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in proof):
        return "proof must be a list of 64-hex-digit hashes"
    return None


def verify_proof(bundle: dict, public_key) -> str | None:
    problem = _proof_problem(bundle)
    if problem:
        return problem
    entry, checkpoint = bundle["entry"], bundle["checkpoint"]
    try:
        if hashing.payload_sha256(entry["payload"]) != entry["payload_sha256"]:
            return "the entry's payload does not match its payload_sha256"
        record = hashing.record_sha256(entry)
    except (ValueError, RecursionError) as exc:
        return f"the entry cannot be hashed: {exc}"
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


def _as_proof(path: Path):
    """The file as an inclusion proof bundle, or None when it is not one (then it is read as an export).

    An export's first line is a JSON object of its own; a proof is one JSON document, usually indented."""
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        item = loads(first.decode("utf-8"))
    except (ValueError, RecursionError):
        item = None
    if isinstance(item, dict) and item.get("format") != PROOF_FORMAT:
        return None  # an export's header, or something the export reader will name
    if path.stat().st_size > PROOF_SIZE_LIMIT:
        return None
    try:
        item = loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if isinstance(item, dict) and item.get("format") == PROOF_FORMAT:
        return item
    return None


def _load_key(text):
    key_text = Path(text).read_text(encoding="utf-8") if Path(text).is_file() else text
    try:
        return signatures.load_public_key(key_text)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise Unreadable(f"the public key is not an Ed25519 public key (PEM, or base64 of 32 bytes): {exc}") from None


def _load_trusted(path, public_key):
    try:
        trusted = witness.read(path)
    except OSError as exc:
        raise Unreadable(f"the trusted checkpoint cannot be read: {exc}") from None
    except ValueError as exc:
        raise Unreadable(f"the trusted checkpoint {path} is not a checkpoint: {exc}") from None
    if not signatures.verify(public_key, trusted):
        raise Unreadable(f"the trusted checkpoint {path} is not signed by this public key")
    return trusted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.audit.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="an export (.jsonl) or an inclusion proof (.json)")
    parser.add_argument("--public-key", required=True, help="PEM file, or base64 of the raw Ed25519 public key")
    parser.add_argument(
        "--trusted-checkpoint", metavar="FILE", help="a signed checkpoint kept outside the database (the sealer's "
        "witness file, `manage.py audit_checkpoint`, or a checkpoint line of an earlier export): the export must "
        "reach it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    is_proof = False
    try:
        public_key = _load_key(args.public_key)
        trusted = _load_trusted(args.trusted_checkpoint, public_key) if args.trusted_checkpoint else None
        bundle = _as_proof(args.file)
        is_proof = bundle is not None
        if is_proof:
            if trusted is not None:
                print("note: a trusted checkpoint is checked against exports, not proofs", file=sys.stderr)
            problem = verify_proof(bundle, public_key)
        else:
            problem = verify_export(args.file, public_key, trusted)
    except Malformed as exc:
        problem = str(exc)
    except (OSError, Unreadable) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    if problem:
        print(f"FAILED: {problem}")
        return 1
    print(
        "OK: inclusion proven in a signed checkpoint"
        if is_proof
        else "OK: export intact and matches its checkpoints"
        + (f", and reaches the trusted checkpoint at {trusted['tree_size']} entries" if trusted else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
