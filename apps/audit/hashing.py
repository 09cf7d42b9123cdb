"""The audit record's canonical bytes and hashes (docs/audit.md). Standard library only: the offline
verifier imports this module without Django."""

import hashlib
import json
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64
SCHEMA_VERSION = 1
# The fields a version-1 record hash covers, in the order docs/audit.md lists them (keys are sorted anyway).
RECORD_FIELDS_V1 = (
    "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id",
    "payload_sha256", "tenant_id", "request_id", "client_ip", "version",
)  # fmt: skip
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(value) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not \\u escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_ts(value: datetime) -> str:
    """UTC with microseconds and a Z: 2026-11-22T21:30:00.000000Z."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime(TS_FORMAT)


def payload_sha256(payload) -> str:
    return sha256_hex(canonical_json(payload))


def record_body(entry: dict) -> dict:
    """The fields of `entry` a record hash covers, for the entry's schema version."""
    version = entry["version"]
    if version != 1:
        raise ValueError(f"unknown audit schema version {version!r}")
    return {name: entry[name] for name in RECORD_FIELDS_V1}


def record_sha256(entry: dict) -> str:
    """`entry` holds the fields with `ts` already formatted by format_ts."""
    return sha256_hex(canonical_json(record_body(entry)))


def chain_hash(prev_hash: str, record_hash: str) -> str:
    """sha256 over the ASCII hex of the previous chain hash followed by the ASCII hex of the record hash."""
    return sha256_hex((prev_hash + record_hash).encode("ascii"))
