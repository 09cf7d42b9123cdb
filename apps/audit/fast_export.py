"""The offline verifier's one-pass proof that an export is intact (docs/audit.md, "Reading an export in one
pass"). Standard library plus `cryptography`, like apps.audit.verify.

It answers only "intact" (True) or "not shown here" (False): a file with any problem, or any line it does not
read on its fast path, goes to verify.verify_export_general, which reads it the defined way and names the problem
at its line. So what a file verifies to, and the words and line of any finding, are the general reader's.

How it stays one pass: the checkpoint and end lines are the file's last lines, so they are read first, from the
end (a few KiB); then the entry and hash lines are walked once, forward, in chunks, with the checkpoints
checked where they fall. An entry line in the exporter's layout is matched as bytes, and its record body is
formatted from the matched bytes (the text fields need no JSON escape there, so their bytes are their JSON
encoding). Its payload bytes are hashed as they stand: the exporter writes the canonical JSON there, and a span
that hashes to payload_sha256 is those bytes (anything else would be a sha256 preimage); a span that does not
(an export written before, with spaces) is parsed strictly and canonicalised, as the general reader does.
"""

import binascii
import hashlib
import re

from . import hashing, verify, witness
from .verification import CHUNK, verify_entries

# Files smaller than MIN_SIZE take the general reader straight away, and so do files whose checkpoint and
# end lines do not fit in the last TAIL bytes.
MIN_SIZE = 0
TAIL = 16 << 20

_TEXT = rb'"([^"\\\x00-\x1f]*)"'
_HEX = rb'"([0-9a-f]{64})"'
_ENTRY = re.compile(
    rb'\{"type": "entry", "id": (?:0|-?[1-9][0-9]*), "seq": ([1-9][0-9]*), '
    rb'"ts": "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z)", '
    + b", ".join(
        b'"%s": %s' % (name, _TEXT) for name in (b"actor_type", b"actor_id", b"action", b"object_type", b"object_id")
    )
    + rb', "payload": (.*?), "payload_sha256": '
    + _HEX
    + rb', "tenant_id": (null|0|-?[1-9][0-9]*), '
    + b'"request_id": %s, "client_ip": %s, "version": ([12]), ' % (_TEXT, _TEXT)
    + b", ".join(b'"%s": %s' % (name, _HEX) for name in (b"record_sha256", b"prev_hash", b"chain_hash"))
    + rb"\}\n",
    re.S,
)
_STUB = re.compile(rb'\{"type": "hash", "seq": ([1-9][0-9]*), "record_sha256": ' + _HEX + b', "prev_hash": ' + _HEX
                   + b', "chain_hash": ' + _HEX + rb"\}\n")  # fmt: skip
# hashing._BODY_V1 and record_bytes_v2 over the matched bytes.
_BODY_V1 = (
    b'{"action":"%s","actor_id":"%s","actor_type":"%s","client_ip":"%s","object_id":"%s","object_type":"%s",'
    b'"payload_sha256":"%s","request_id":"%s","seq":%s,"tenant_id":%s,"ts":"%s","version":1}'
)
_BODY_V2 = b"15:tezgah-audit-v2,%d:%s,27:%s,%d:%s,%d:%s,%d:%s,%d:%s,%d:%s,64:%s,%s%d:%s,%d:%s,"


class NotFast(Exception):
    """This file is not proven intact here: the general reader decides."""


def _canonical_payload(span: bytes) -> bytes:
    """The canonical JSON of a payload written another way (exports made before the exporter wrote it canonical)."""
    return hashing.canonical_json_fast(verify._DECODER.decode(span.decode("utf-8")))


class _Chunk:
    """Entry and hash lines as (seq, body or None for a hash line, payload bytes, payload_sha256, record_sha256,
    prev_hash, chain_hash), bytes; what verification.verify_entries asks of a chunk."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def seq(self, i):
        return self.rows[i][0]

    def entry_id(self, i):
        return None

    def chain_hash(self, i):
        return self.rows[i][6].decode("ascii")

    def leaves(self, start, stop):
        return self._leaves[start:stop]

    def intact(self, expected_seq, prev_hash):
        """Every check of verification._chunk_intact, over whole columns: the hashes are all 64 hex digits here
        (matched, or checked by entry_problem), so comparing the joined digests compares each of them."""
        sha256, hexlify, n = hashlib.sha256, binascii.hexlify, len(self.rows)
        seqs, bodies, payloads, payload_hashes, records, prevs, chains = zip(*self.rows, strict=True)
        if seqs != tuple(range(expected_seq, expected_seq + n)):
            return False
        if None in bodies:  # hash lines: only their links and leaves
            full = [i for i, body in enumerate(bodies) if body is not None]
            payloads = [payloads[i] for i in full]
            payload_hashes = [payload_hashes[i] for i in full]
            leaves = [bytes.fromhex(r.decode("ascii")) for r in records]
            if [sha256(bodies[i]).digest() for i in full] != [leaves[i] for i in full]:
                return False
        else:
            leaves = [sha256(body).digest() for body in bodies]
            if hexlify(b"".join(leaves)) != b"".join(records):
                return False
        if hexlify(b"".join([sha256(p).digest() for p in payloads])) != b"".join(payload_hashes):
            for span, want in zip(payloads, payload_hashes, strict=True):
                if hexlify(sha256(span).digest()) == want:
                    continue
                if hexlify(sha256(_canonical_payload(span)).digest()) != want:
                    return False
        if prevs != (prev_hash.encode("ascii"), *chains[:-1]):
            return False
        if hexlify(b"".join([sha256(p + r).digest() for p, r in zip(prevs, records, strict=True)])) != b"".join(chains):
            return False
        self._leaves = leaves
        return True

    def dicts(self):
        raise NotFast


def _tail(handle, size):
    """(offset of the first line after the last entry or hash line, those lines) from the end of the file."""
    start = max(0, size - TAIL)
    handle.seek(start)
    block = handle.read(size - start)
    if not block.endswith(b"\n"):
        raise NotFast
    lines = block.split(b"\n")[:-1]
    tail = []
    for i in range(len(lines) - 1, 0, -1):  # lines[0] may be cut by the block's start
        line = lines[i] + b"\n"
        if line.startswith((b'{"type": "entry", ', b'{"type": "hash", ')):
            return size - sum(len(t) for t in tail), tail[::-1]
        tail.append(line)
    raise NotFast


def _item(raw: bytes):
    try:
        item = verify.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise NotFast from None
    if not isinstance(item, dict) or not raw.endswith(b"\n") or not raw.strip():
        raise NotFast
    return item


def _end_and_checkpoints(tail):
    checkpoints = []
    for raw in tail[:-1]:
        item = _item(raw)
        if item.get("type") != "checkpoint" or witness.checkpoint_problem(item):
            raise NotFast
        if checkpoints and item["tree_size"] <= checkpoints[-1]["tree_size"]:
            raise NotFast
        checkpoints.append(item)
    if not tail:
        raise NotFast
    end = _item(tail[-1])
    if end.get("type") != "end" or verify.LINE_CHECKS["end"](end):
        raise NotFast
    return end, checkpoints


def _general_row(raw: bytes):
    """A line the patterns do not match (escaped text, another layout), read the general way; NotFast unless it
    is a well-formed entry or hash line."""
    item = _item(raw)
    kind = item.get("type")
    if kind not in ("entry", "hash") or verify.LINE_CHECKS[kind](item):
        raise NotFast
    hashes = tuple(item[k].encode("ascii") for k in ("record_sha256", "prev_hash", "chain_hash"))
    if kind == "hash":
        return kind, (item["seq"], None, None, None, *hashes)
    try:
        body, payload = hashing.record_bytes(item), hashing.canonical_json_fast(item["payload"])
    except (ValueError, TypeError, RecursionError):
        raise NotFast from None
    return kind, (item["seq"], body, payload, item["payload_sha256"].encode("ascii"), *hashes)


def _rows(handle, stop, counted):
    """Chunks of the entry and hash lines from the handle's position to the offset `stop`. An entry line's record
    body is formatted here from the matched bytes (version 1: hashing._BODY_V1's layout, version 2: the
    netstrings), inline: a function call per line costs about as much as the formatting."""
    entry, stub, at, rows, entries, hashes = _ENTRY.fullmatch, _STUB.fullmatch, handle.tell(), [], 0, 0
    body_v1, body_v2 = _BODY_V1, _BODY_V2
    for raw in handle:
        at += len(raw)
        if (m := entry(raw)) is not None:
            seq, ts, a_type, a_id, action, o_type, o_id, payload, psha, tenant, request, ip, v, rec, prev, chain = (
                m.groups()
            )
            if v == b"2":
                body = body_v2 % (
                    len(seq), seq, ts, len(a_type), a_type, len(a_id), a_id, len(action), action, len(o_type), o_type,
                    len(o_id), o_id, psha, b"0:," if tenant == b"null" else b"%d:%s," % (len(tenant), tenant),
                    len(request), request, len(ip), ip,
                )  # fmt: skip
            else:
                body = body_v1 % (action, a_id, a_type, ip, o_id, o_type, psha, request, seq, tenant, ts)
            rows.append((int(seq), body, payload, psha, rec, prev, chain))
            entries += 1
        elif (m := stub(raw)) is not None:
            rows.append((int(m[1]), None, None, None, m[2], m[3], m[4]))
            hashes += 1
        else:
            kind, row = _general_row(raw)
            rows.append(row)
            if kind == "entry":
                entries += 1
            else:
                hashes += 1
        if len(rows) == CHUNK:
            yield _Chunk(rows)
            rows = []
        if at >= stop:
            break
    counted["entry"], counted["hash"] = entries, hashes
    if at != stop:
        raise NotFast
    if rows:
        yield _Chunk(rows)


def verify_export_fast(path, public_key, trusted=None) -> bool:
    """True when the export at `path` is intact (and reaches `trusted`); False: ask verify_export_general."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            if size < MIN_SIZE:
                return False
            stop, tail = _tail(handle, size)
            end, checkpoints = _end_and_checkpoints(tail)
            handle.seek(0)
            try:
                header = verify._header(1, _item(handle.readline()))
            except (verify.Malformed, verify.Unreadable):
                return False
            start, first_seq = {}, header.get("first_seq", 1)
            if first_seq != 1:  # as verify_export_general: anchored at the checkpoint right before
                size = first_seq - 1 if verify._integer(first_seq) else None
                anchor = next((c for c in checkpoints if c["tree_size"] == size), None)
                if anchor is None:
                    return False
                start = {"expected_seq": first_seq, "prev_hash": anchor["head_hash"]}
                if trusted is not None and trusted["tree_size"] < first_seq:
                    kept = next((c for c in checkpoints if c["tree_size"] == trusted["tree_size"]), None)
                    if kept is None or kept["head_hash"] != trusted["head_hash"]:
                        return False
                    trusted = None
            counted = {"entry": 0, "hash": 0}
            report = verify_entries(
                (), chunks=_rows(handle, stop, counted), checkpoints=checkpoints, public_key=public_key,
                witness=trusted, **start,
            )  # fmt: skip
    except (NotFast, OSError):
        return False
    return (
        report.ok
        and (counted["entry"], counted["hash"]) == (end["entries"], end["hashes"])
        and (report.last_seq or 0) == header["last_seq"]
    )
