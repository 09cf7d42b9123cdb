"""Ed25519 signatures over checkpoint statements. Needs only `cryptography` (the offline verifier uses it)."""

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .hashing import canonical_json


def statement(checkpoint: dict) -> bytes:
    """The bytes a checkpoint's signature covers: canonical JSON of these six fields."""
    return canonical_json({k: checkpoint[k] for k in ("v", "tree_size", "head_hash", "merkle_root", "ts", "key_id")})


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A PEM private key, or the base64 of its 32 raw bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit signing key must be an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))


def load_public_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(private_key: Ed25519PrivateKey, checkpoint: dict) -> str:
    return base64.b64encode(private_key.sign(statement(checkpoint))).decode()


def verify(public_key: Ed25519PublicKey, checkpoint: dict) -> bool:
    try:
        public_key.verify(base64.b64decode(checkpoint["signature"]), statement(checkpoint))
    except (InvalidSignature, ValueError):
        return False
    return True
