"""The audit record's canonical bytes and hashes (docs/audit.md). Standard library only: the offline
verifier imports this module without Django."""

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring

GENESIS_HASH = "0" * 64
# The record schema version record() writes (docs/audit.md, "Hashes (version 2)"); entries of every version in
# SCHEMA_VERSIONS keep verifying with their own body.
SCHEMA_VERSION = 2
SCHEMA_VERSIONS = (1, 2)
# The fields a version-1 record hash covers, in the order docs/audit.md lists them (keys are sorted anyway).
RECORD_FIELDS_V1 = (
    "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id",
    "payload_sha256", "tenant_id", "request_id", "client_ip", "version",
)  # fmt: skip
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(value) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not \\u escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _refuse(value):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) builds a
# JSONEncoder and a C encoder on every call (about half its time for an audit payload); this is the very
# C encoder json.dumps ends up calling, built once. Without the circular-reference markers: values parsed
# from JSON cannot be circular, and a deep one still stops with RecursionError.
_C_CANONICAL = (
    c_make_encoder(None, _refuse, encode_basestring, None, ":", ",", True, False, False) if c_make_encoder else None
)


def canonical_json_fast(value) -> bytes:
    """canonical_json's bytes, cheaper (tests/audit/test_fast_canonical.py compares both)."""
    if _C_CANONICAL is None or isinstance(value, str):
        return canonical_json(value)
    return "".join(_C_CANONICAL(value, 0)).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_ts(value: datetime) -> str:
    """UTC with microseconds and a Z: 2026-11-22T21:30:00.000000Z."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime(TS_FORMAT)


def payload_sha256(payload) -> str:
    return hashlib.sha256(canonical_json_fast(payload)).hexdigest()


def record_body(entry: dict) -> dict:
    """The fields of `entry` a version-1 record hash covers (its canonical JSON is the version-1 body)."""
    version = entry["version"]
    if version != 1:
        raise ValueError(f"unknown audit schema version {version!r}")
    return {name: entry[name] for name in RECORD_FIELDS_V1}


# Version 2: the record body is netstrings (`<byte length>:<bytes>,`, lengths in decimal ASCII) of a tag and the
# fields in this order, each as text: integers in decimal, a null tenant_id as the empty string, the rest as
# UTF-8. Cheap to build in SQL and in Python (no JSON escaping, no key names); docs/audit.md, "Hashes (version 2)".
RECORD_TAG_V2 = b"tezgah-audit-v2"
RECORD_FIELDS_V2 = (
    "seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload_sha256", "tenant_id",
    "request_id", "client_ip",
)  # fmt: skip
_INTEGER_FIELDS_V2 = frozenset({"seq", "tenant_id"})
_TEXT_FIELDS_V2 = ("actor_type", "actor_id", "action", "object_type", "object_id", "payload_sha256", "request_id",
                   "client_ip")  # fmt: skip


def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


_BODY_V2 = b"15:tezgah-audit-v2,%d:%s,27:%s,%d:%s,%d:%s,%d:%s,%d:%s,%d:%s,%d:%s,%s%d:%s,%d:%s,"


def record_bytes_v2(entry: dict) -> bytes:
    """The version-2 record body of `entry` (its `version` is not looked at: the tag says 2): one format when
    the fields have their usual types, else field by field (which refuses what is not an integer or a string)."""
    seq, tenant, ts = entry["seq"], entry["tenant_id"], entry["ts"]
    if type(seq) is int and (tenant is None or type(tenant) is int) and type(ts) is str and len(ts) == 27:
        try:
            texts = [entry[name].encode() for name in _TEXT_FIELDS_V2]
        except AttributeError:  # not a string: the general form below says so
            pass
        else:
            seq_text, ts_text = b"%d" % seq, ts.encode()
            if len(ts_text) == 27:
                at, ai, ac, ot, oi, ps, ri, ip = texts
                return _BODY_V2 % (
                    len(seq_text), seq_text, ts_text, len(at), at, len(ai), ai, len(ac), ac, len(ot), ot, len(oi), oi,
                    len(ps), ps, b"0:," if tenant is None else b"%d:%d," % (len(b"%d" % tenant), tenant), len(ri), ri,
                    len(ip), ip,
                )  # fmt: skip
    return _record_bytes_v2_general(entry)


def _record_bytes_v2_general(entry: dict) -> bytes:
    parts = [RECORD_TAG_V2]
    for name in RECORD_FIELDS_V2:
        value = entry[name]
        if name in _INTEGER_FIELDS_V2:
            if value is None and name == "tenant_id":
                parts.append(b"")
                continue
            if type(value) is not int:
                raise ValueError(f"{name} must be an integer in a version-2 record, not {value!r}")
            parts.append(b"%d" % value)
        else:
            if type(value) is not str:
                raise ValueError(f"{name} must be a string in a version-2 record, not {value!r}")
            parts.append(value.encode())  # a lone surrogate: UnicodeEncodeError, a ValueError
    return b"".join(b"%d:%s," % (len(p), p) for p in parts)


# canonical_json(record_body(entry)) of a version-1 entry whose fields have their usual types, as one
# format: the keys in sorted order, each text through json's own string encoder.
_BODY_V1 = (
    '{"action":%s,"actor_id":%s,"actor_type":%s,"client_ip":%s,"object_id":%s,"object_type":%s,'
    '"payload_sha256":%s,"request_id":%s,"seq":%d,"tenant_id":%s,"ts":%s,"version":1}'
)


def record_bytes(entry: dict) -> bytes:
    """The record body of `entry`'s schema version: version 2's netstrings, or version 1's
    canonical_json(record_body(entry)) (formatted directly when the fields have their usual types)."""
    if type(entry["version"]) is int and entry["version"] == 2:
        return record_bytes_v2(entry)
    seq, tenant = entry["seq"], entry["tenant_id"]
    if (
        type(entry["version"]) is int
        and entry["version"] == 1
        and type(seq) is int
        and (tenant is None or type(tenant) is int)
    ):
        try:
            return (
                _BODY_V1
                % (
                    encode_basestring(entry["action"]),
                    encode_basestring(entry["actor_id"]),
                    encode_basestring(entry["actor_type"]),
                    encode_basestring(entry["client_ip"]),
                    encode_basestring(entry["object_id"]),
                    encode_basestring(entry["object_type"]),
                    encode_basestring(entry["payload_sha256"]),
                    encode_basestring(entry["request_id"]),
                    seq,
                    "null" if tenant is None else repr(tenant),
                    encode_basestring(entry["ts"]),
                )
            ).encode()
        except TypeError:  # a field that is not a string: the general form says what JSON makes of it
            pass
    return canonical_json(record_body(entry))


def record_sha256(entry: dict) -> str:
    """`entry` holds the fields with `ts` already formatted by format_ts."""
    return hashlib.sha256(record_bytes(entry)).hexdigest()


def chain_hash(prev_hash: str, record_hash: str) -> str:
    """sha256 over the ASCII hex of the previous chain hash followed by the ASCII hex of the record hash."""
    return sha256_hex((prev_hash + record_hash).encode("ascii"))
