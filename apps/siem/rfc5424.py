"""RFC 5424 syslog messages with structured data, framed by RFC 6587 octet counting (as RFC 5425 requires).

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [tezgah@32473 eid=".." ver="1" event=".." ...] BOM{json}

32473 is the private enterprise number RFC 5612 sets aside for examples; an operator with a number of their
own sets SIEM_SD_ID (e.g. `tezgah@12345`).
"""

import json
import re

FACILITY_DEFAULT = 13  # "log audit"
SEVERITY = {"DEBUG": 7, "INFO": 6, "NOTICE": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
BOM = "\ufeff"
_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


def _field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII, no spaces, at most `limit` characters, '-' when empty."""
    clean = _PRINTUSASCII.sub("_", value or "")[:limit]
    return clean or "-"


def sd_escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(sd_id: str, params: dict) -> str:
    body = " ".join(f'{name}="{sd_escape(value)}"' for name, value in params.items() if value not in (None, ""))
    return f"[{sd_id} {body}]" if body else f"[{sd_id}]"


def message(envelope: dict, *, msgid: str, facility: int = FACILITY_DEFAULT, sd_id: str = "tezgah@32473") -> bytes:
    """The RFC 5424 message of one envelope (no framing)."""
    pri = facility * 8 + SEVERITY.get(envelope.get("level", "INFO"), 6)
    actor = envelope.get("actor") or {}
    sd = structured_data(
        sd_id,
        {
            "eid": envelope["event_id"],
            "ver": envelope["schema_ver"],
            "event": envelope["event"],
            "req": None if envelope.get("req_id") == "-" else envelope.get("req_id"),
            "trace": envelope.get("trace_id"),
            "actor": f"{actor.get('type', '')}:{actor.get('id', '')}".rstrip(":"),
        },
    )
    header = " ".join(
        [
            f"<{pri}>1",
            envelope["ts"],
            _field(envelope.get("host", ""), 255),
            _field(envelope.get("svc", ""), 48),
            "-",
            _field(msgid, 32),
        ]
    )
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return f"{header} {sd} {BOM}{body}".encode()


def frame(msg: bytes) -> bytes:
    """RFC 6587 octet counting: the message's length in bytes, a space, the message."""
    return b"%d %s" % (len(msg), msg)


def read_frames(data: bytes) -> list[bytes]:
    """The messages of an octet-counted stream (the tests' and benchmark's reader)."""
    out, i = [], 0
    while i < len(data):
        space = data.index(b" ", i)
        length = int(data[i:space])
        out.append(data[space + 1 : space + 1 + length])
        i = space + 1 + length
    return out
