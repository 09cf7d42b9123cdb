"""Signatures on ERP messages: the seed's X-Signature, and Standard Webhooks headers when a profile asks."""

import base64
import hashlib
import hmac


def x_signature(secret: str, body: bytes) -> str:
    """base64(hmac_sha256(secret, body)) over exactly the bytes sent."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def x_signature_matches(secret: str, body: bytes, signature: str) -> bool:
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500, issue 11).
    sent = signature.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(x_signature(secret, body).encode(), sent)


def timestamped_content(timestamp: str, body: bytes) -> bytes:
    """What X-Signature covers when X-Signature-Timestamp is sent: `<timestamp>.<body>` (Standard Webhooks'
    `id.timestamp.body` without the id: the message's X-Request-Id is optional)."""
    return timestamp.encode("ascii") + b"." + body


def standard_webhooks_headers(secrets: list[str], *, msg_id: str, timestamp: int, body: bytes) -> dict:
    """Standard Webhooks v1: one `v1,<sig>` per key (both during a rotation), over `id.timestamp.body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(s.encode(), signed, hashlib.sha256).digest()).decode() for s in secrets
    ]
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": " ".join(signatures)}
