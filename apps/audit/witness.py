"""Witnessed checkpoints: a signed checkpoint kept outside the database, which the data must still reach.

Standard library only (the offline verifier reads witnesses without Django). A witness is the JSON object
of a checkpoint line of the export (docs/audit.md): `{"type": "checkpoint", "v": 1, "tree_size", "head_hash",
"merkle_root", "ts", "key_id", "signature", "tsa_token"}`. `document()` makes it, for the sealer's witness file,
its log line, and whatever ships checkpoints elsewhere (a SIEM).
"""

import json
import os
import re
import tempfile
from pathlib import Path

from .hashing import canonical_json

LOG_PREFIX = "audit checkpoint "
CHECKPOINT_LOGGER = "apps.audit.checkpoints"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def document(statement: dict) -> dict:
    """The witness JSON of a checkpoint, from its signed statement (AuditCheckpoint.statement_fields())."""
    return {
        "type": "checkpoint", "v": statement["v"], "tree_size": statement["tree_size"],
        "head_hash": statement["head_hash"], "merkle_root": statement["merkle_root"], "ts": statement["ts"],
        "key_id": statement["key_id"], "signature": statement["signature"],
        "tsa_token": statement.get("tsa_token") or "",
    }  # fmt: skip


def log_message(statement: dict) -> str:
    """The application log line the sealer writes for every signed checkpoint (`parse` reads it back)."""
    return LOG_PREFIX + canonical_json(document(statement)).decode()


def checkpoint_problem(item, *, typed=True) -> str | None:
    """What is wrong with `item` as a checkpoint line, or None. Shared by export lines, witnesses and proofs
    (whose checkpoint has no `type`: typed=False)."""
    if not isinstance(item, dict):
        return "a checkpoint must be a JSON object"
    if not typed:
        item = {"type": "checkpoint", **item}
    expected = {"type", "v", "tree_size", "head_hash", "merkle_root", "ts", "key_id", "signature"}
    missing = sorted(expected - item.keys())
    if missing:
        return f"checkpoint without {', '.join(missing)}"
    unknown = sorted(item.keys() - expected - {"tsa_token"})
    if unknown:
        return f"checkpoint with unknown fields {', '.join(unknown)}"
    if item["type"] != "checkpoint":
        return 'type must be "checkpoint"'
    if type(item["v"]) is not int or item["v"] != 1:
        return "v must be 1"
    size = item["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return "tree_size must be an integer of at least 1"
    for name in ("head_hash", "merkle_root"):
        if not isinstance(item[name], str) or not _HEX64.fullmatch(item[name]):
            return f"{name} must be 64 lower-case hex digits"
    if not isinstance(item["ts"], str) or not _TS.fullmatch(item["ts"]):
        return "ts must be a UTC time like 2026-11-22T21:30:00.000000Z"
    if not isinstance(item["key_id"], str) or not _KEY_ID.fullmatch(item["key_id"]):
        return "key_id must be 16 lower-case hex digits"
    if (
        not isinstance(item["signature"], str)
        or len(item["signature"]) != 88
        or not _BASE64.fullmatch(item["signature"])
    ):
        return "signature must be the standard base64 (with padding) of 64 bytes"
    token = item.get("tsa_token", "")
    if not isinstance(token, str) or not _BASE64.fullmatch(token):
        return "tsa_token must be standard base64 (or empty)"
    return None


def parse(text: str) -> dict:
    """A witness from a file's text: a checkpoint object, or the sealer's JSON log line (or its message).

    Raises ValueError saying what is wrong. The signature is not checked here (the verifiers do).
    """
    text = text.strip()
    if text.startswith(LOG_PREFIX):
        text = text[len(LOG_PREFIX) :]
    try:
        item = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(item, dict) and item.get("logger") == CHECKPOINT_LOGGER and isinstance(item.get("msg"), str):
        return parse(item["msg"])  # a line of the JSON application log
    problem = checkpoint_problem(item)
    if problem:
        raise ValueError(problem)
    return item


def read(path) -> dict:
    """The witness in the file at `path`; OSError when unreadable, ValueError when not a witness."""
    return parse(Path(path).read_text(encoding="utf-8"))


def write(path, statement: dict) -> None:
    """Replace the witness file atomically (a reader sees the old witness or the new one, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-witness-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document(statement), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
