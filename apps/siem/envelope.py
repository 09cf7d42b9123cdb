"""The one versioned envelope every shipped record has, and how audit entries and checkpoints fill it.

    {"schema_ver": 1, "event_id", "ts", "level", "svc", "host", "req_id", "trace_id", "actor", "event",
     "payload_redacted"}

`event_id` is derived from the source (uuid5 of "audit:<seq>" / "checkpoint:<tree_size>"), so a record sent
twice (at-least-once, a replay) carries the same id and the SIEM can drop the copy.
"""

import hashlib
import re
import socket
import uuid
from datetime import UTC

from django.conf import settings

from apps.core import masking

SCHEMA_VERSION = 1
_NAMESPACE = uuid.UUID("6f1f1c2e-6b0a-5e0c-9a51-3d0c5a1f7e15")

_WARNING_WORDS = ("refused", "failed", "denied", "locked", "throttled", "revoked", "tamper", "dead", "dlq")


def event_id(source: str, ref: int) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{source}:{ref}")


def level_for(action: str) -> str:
    if action.startswith(("incident_lock.", "audit.verify_failed", "erp.breaker.opened")) or "tamper" in action:
        return "WARNING"
    if action.endswith((".dead", ".dead_lettered")) or (".dlq." in action and not action.endswith("replayed")):
        return "ERROR"
    if action.startswith("security.") or any(word in action for word in _WARNING_WORDS):
        return "WARNING"
    return "INFO"


_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def trace_id_for(payload: dict, request_id: str, fallback: str) -> str:
    """The record's trace id, never empty: the payload's `trace_id` when the entry carries a valid one; else
    derived from the entry's request id (the request id itself when it is 32 hex digits or a UUID, as the
    portal's own ids are; else its sha256's first 32 digits), so every record of one request shares it; else
    (no request: beat tasks, the sealer) derived from `fallback`, the record's own event id."""
    given = payload.get("trace_id") if isinstance(payload, dict) else None
    if isinstance(given, str) and _HEX32.match(given.strip().lower().replace("-", "")):
        return given.strip().lower().replace("-", "")
    request_id = (request_id or "").strip()
    if request_id and request_id != "-":
        plain = request_id.lower().replace("-", "")
        if _HEX32.match(plain) and set(plain) != {"0"}:
            return plain
        return hashlib.sha256(request_id.encode()).hexdigest()[:32]
    return hashlib.sha256(fallback.encode()).hexdigest()[:32]


def _iso(ts) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _host() -> str:
    return settings.SIEM_HOSTNAME or socket.gethostname()


def _mask(value):
    if not settings.SIEM_MASK_PII:
        return value
    return masking.mask(value, mask_ips=settings.SIEM_MASK_IPS)


def for_audit_entry(entry) -> dict:
    """The envelope of a sealed audit entry: its summary fields and its masked payload."""
    payload = entry.payload if isinstance(entry.payload, dict) else {"value": entry.payload}
    client_ip = entry.client_ip
    if client_ip and settings.SIEM_MASK_IPS:
        client_ip = masking.IP
    eid = str(event_id("audit", entry.seq))
    return {
        "schema_ver": SCHEMA_VERSION,
        "event_id": eid,
        "ts": _iso(entry.ts),
        "level": level_for(entry.action),
        "svc": settings.SIEM_APP_NAME,
        "host": _host(),
        "req_id": entry.request_id or "-",
        "trace_id": trace_id_for(payload, entry.request_id, eid),
        "actor": {"type": entry.actor_type, "id": entry.actor_id},
        "event": entry.action,
        "payload_redacted": {
            "seq": entry.seq,
            "tenant_id": entry.tenant_id,
            "object_type": entry.object_type,
            "object_id": _mask(entry.object_id),
            "client_ip": client_ip,
            "chain_hash": entry.chain_hash,
            "data": _mask(payload),
        },
    }


def for_checkpoint(checkpoint, witness: dict) -> dict:
    """The envelope of a signed checkpoint: the witness document whole (ids, hashes and a signature only)."""
    eid = str(event_id("checkpoint", checkpoint.tree_size))
    return {
        "schema_ver": SCHEMA_VERSION,
        "event_id": eid,
        "ts": _iso(checkpoint.ts),
        "level": "NOTICE",
        "svc": settings.SIEM_APP_NAME,
        "host": _host(),
        "req_id": "-",
        "trace_id": trace_id_for({}, "", eid),
        "actor": {"type": "system", "id": ""},
        "event": "audit.checkpoint",
        "payload_redacted": witness,
    }
