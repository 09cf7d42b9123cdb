"""An audit export and proof verifier written from docs/audit.md alone: it imports nothing from apps.audit.

    python tests/audit/spec_verifier.py FILE PUBLIC_KEY.pem [TRUSTED_CHECKPOINT.json]

Prints OK or FAILED: reason, exits 0 or 1. Deliberately plain: it is the check that the document says enough.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key

ZEROS = "0" * 64
BODY = ("seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload_sha256",
        "tenant_id", "request_id", "client_ip", "version")  # fmt: skip
ENTRY_KEYS = {"type", "id", "payload", "record_sha256", "prev_hash", "chain_hash", *BODY}
STUB_KEYS = {"type", "seq", "record_sha256", "prev_hash", "chain_hash"}
CHECKPOINT_KEYS = {"type", "v", "tree_size", "head_hash", "merkle_root", "ts", "key_id", "signature", "tsa_token"}


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves):
    """RFC 6962 Merkle Tree Hash: leaf sha256(0x00||leaf), node sha256(0x01||l||r), split at the largest
    power of two below n, empty tree sha256("")."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def signature_ok(key, cp) -> bool:
    statement = {k: cp[k] for k in ("v", "tree_size", "head_hash", "merkle_root", "ts", "key_id")}
    try:
        key.verify(base64.b64decode(cp["signature"], validate=True), canonical(statement))
    except Exception:
        return False
    return True


def key_id(key) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def netstring(text: str) -> bytes:
    data = text.encode("utf-8")
    return str(len(data)).encode() + b":" + data + b","


def body_v2(e) -> bytes:
    """Version 2: netstrings of the tag and the fields in the documented order; null tenant_id as ""."""
    fields = [str(e[k]) if k in ("seq", "tenant_id") and e[k] is not None else (e[k] or "") for k in BODY[:-1]]
    return b"".join(netstring(f) for f in ["tezgah-audit-v2", *fields])


def entry_ok(e) -> str | None:
    if e["payload_sha256"] != hashlib.sha256(canonical(e["payload"])).hexdigest():
        return "payload hash"
    if e["version"] == 1:
        body = canonical({k: e[k] for k in BODY})
    elif e["version"] == 2:
        body = body_v2(e)
    else:
        return "version"
    if e["record_sha256"] != hashlib.sha256(body).hexdigest():
        return "record hash"
    return None


def verify_export(text: str, key, trusted=None) -> str | None:
    if not text.endswith("\n"):
        return "cut off"
    items = [json.loads(line) for line in text.split("\n")[:-1]]
    header, body = items[0], items[1:]
    if header.get("format") != "tezgah-audit-export" or header.get("version") != 1:
        return "header"
    if not body or body[-1].get("type") != "end":
        return "no end line"
    end, body = body[-1], body[:-1]
    prev, leaves, heads = ZEROS, [], {}
    counts = {"entry": 0, "hash": 0}
    checkpoints = []
    for item in body:
        kind = item.get("type")
        if kind in ("entry", "hash"):
            if checkpoints:
                return "entry after checkpoints"
            if set(item) != (ENTRY_KEYS if kind == "entry" else STUB_KEYS):
                return f"keys of seq {item.get('seq')}"
            counts[kind] += 1
            if item["seq"] != len(leaves) + 1:
                return f"gap at {item['seq']}"
            if kind == "entry" and entry_ok(item):
                return f"seq {item['seq']}: {entry_ok(item)}"
            if item["prev_hash"] != prev:
                return f"link at {item['seq']}"
            prev = hashlib.sha256((prev + item["record_sha256"]).encode("ascii")).hexdigest()
            if prev != item["chain_hash"]:
                return f"chain hash at {item['seq']}"
            leaves.append(bytes.fromhex(item["record_sha256"]))
            heads[item["seq"]] = prev
        elif kind == "checkpoint":
            if not set(item) <= CHECKPOINT_KEYS or set(item) < CHECKPOINT_KEYS - {"tsa_token"}:
                return "checkpoint keys"
            checkpoints.append(item)
        else:
            return f"unknown line {kind!r}"
    if (counts["entry"], counts["hash"]) != (end["entries"], end["hashes"]):
        return "end counts"
    if header["last_seq"] != len(leaves):
        return "last_seq"
    for cp in [*checkpoints, *([trusted] if trusted else [])]:
        if not signature_ok(key, cp) or cp["key_id"] != key_id(key):
            return f"signature of checkpoint at {cp['tree_size']}"
        size = cp["tree_size"]
        if size > len(leaves):
            return f"missing tail: checkpoint at {size}, chain ends at {len(leaves)}"
        if heads[size] != cp["head_hash"] or mth(leaves[:size]).hex() != cp["merkle_root"]:
            return f"checkpoint at {size} differs"
    return None


def verify_proof(bundle, key) -> str | None:
    if bundle["format"] != "tezgah-audit-inclusion-proof" or bundle["version"] != 1:
        return "not a proof"
    entry, cp = bundle["entry"], bundle["checkpoint"]
    problem = entry_ok(entry)
    if problem:
        return problem
    if not signature_ok(key, cp):
        return "signature"
    index, size = bundle["leaf_index"], bundle["tree_size"]
    if size != cp["tree_size"] or index != entry["seq"] - 1 or not entry["seq"] <= size:
        return "position"
    # RFC 9162 section 2.1.3.2, the audit path from the leaf's sibling up.
    fn, sn, r = index, size - 1, sha(b"\x00" + bytes.fromhex(entry["record_sha256"]))
    for p in (bytes.fromhex(h) for h in bundle["proof"]):
        if sn == 0:
            return "path too long"
        if fn % 2 == 1 or fn == sn:
            r = sha(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = sha(b"\x01" + r + p)
        fn, sn = fn // 2, sn // 2
    if sn != 0 or r.hex() != cp["merkle_root"]:
        return "path does not reach the root"
    return None


def main(argv) -> int:
    text = open(argv[0], encoding="utf-8").read()  # noqa: SIM115 (a test tool)
    key = load_pem_public_key(open(argv[1], "rb").read())  # noqa: SIM115
    trusted = json.loads(open(argv[2], encoding="utf-8").read()) if len(argv) > 2 else None  # noqa: SIM115
    first = json.loads(text.split("\n", 1)[0]) if text.startswith('{"') else json.loads(text)
    if first.get("format") == "tezgah-audit-inclusion-proof":
        problem = verify_proof(json.loads(text), key)
    else:
        problem = verify_export(text, key, trusted)
    print(f"FAILED: {problem}" if problem else "OK")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
