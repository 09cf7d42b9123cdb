"""Crypto-shredding of personal values in audit payloads: each data subject's values are encrypted under a key
of their own (AuditSubjectKey); erasing the subject destroys the key. The ciphertext stays in the payload, so
payload_sha256, the record hashes, the chain and every checkpoint verify as before (docs/governance.md).

A protected value is the object {"$pii": PSEUDONYM, "c": FERNET_TOKEN}; the pseudonym is stable and says whose
value it was. Which values are personal: those under the payload keys in AUDIT_PERSONAL_PAYLOAD_KEYS, at any
depth (admin.change's {"fields": {"email": [old, new]}} included).
"""

import base64
import hashlib
import json
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import AuditSubjectKey

MARK = "$pii"
ERASED = "$erased"


def _kek() -> Fernet:
    secret = settings.AUDIT_SUBJECT_KEY_SECRET or f"audit-subject-keys:{settings.SECRET_KEY}"
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def personal_keys() -> frozenset:
    return frozenset(settings.AUDIT_PERSONAL_PAYLOAD_KEYS)


def has_personal(value, keys) -> bool:
    if isinstance(value, dict):
        return any(k in keys or has_personal(v, keys) for k, v in value.items())
    if isinstance(value, list):
        return any(has_personal(v, keys) for v in value)
    return False


def key_for(subject_id: str) -> AuditSubjectKey:
    """The subject's key row, made on first use (call inside the transaction that records the entry)."""
    row = AuditSubjectKey.objects.filter(subject_id=subject_id).first()
    if row is not None:
        return row
    raw = Fernet.generate_key()
    try:
        with transaction.atomic():
            return AuditSubjectKey.objects.create(
                subject_id=subject_id, pseudonym=f"subj-{secrets.token_hex(8)}", wrapped_key=_kek().encrypt(raw),
                created_at=timezone.now(),
            )  # fmt: skip
    except IntegrityError:  # made meanwhile by a concurrent writer
        return AuditSubjectKey.objects.get(subject_id=subject_id)


def _cipher(row: AuditSubjectKey) -> Fernet | None:
    if row.wrapped_key is None:
        return None
    return Fernet(_kek().decrypt(bytes(row.wrapped_key)))


def protect(payload: dict, subject_id: str) -> dict:
    """`payload` with every value under a personal key encrypted under `subject_id`'s key.

    A subject whose key was destroyed (erased) gets no new readable values: they are recorded as erased."""
    keys = personal_keys()
    if not has_personal(payload, keys):
        return payload
    row = key_for(subject_id)
    cipher = _cipher(row)

    def seal(value):
        if value is None or value == "":
            return value
        if cipher is None:
            return {ERASED: row.pseudonym}
        token = cipher.encrypt(json.dumps(value, ensure_ascii=False).encode()).decode()
        return {MARK: row.pseudonym, "c": token}

    def walk(value):
        if isinstance(value, dict):
            return {k: (_seal_all(v, seal) if k in keys else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(payload)


def _seal_all(value, seal):
    # A personal key's value may be a pair [old, new] (admin.change): each part separately.
    if isinstance(value, list):
        return [seal(v) for v in value]
    return seal(value)


def reveal(payload, *, cache=None):
    """`payload` with protected values decrypted where the subject's key still exists, else {"$erased": pseudonym}."""
    cache = {} if cache is None else cache

    def open_one(value):
        pseudonym = value[MARK]
        if pseudonym not in cache:
            row = AuditSubjectKey.objects.filter(pseudonym=pseudonym).first()
            cache[pseudonym] = _cipher(row) if row is not None else None
        cipher = cache[pseudonym]
        if cipher is None:
            return {ERASED: pseudonym}
        try:
            return json.loads(cipher.decrypt(value["c"].encode()))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return {ERASED: pseudonym}

    def walk(value):
        if isinstance(value, dict):
            if MARK in value and set(value) == {MARK, "c"}:
                return open_one(value)
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(payload)


def has_plaintext(payload, keys=None) -> bool:
    """Whether `payload` holds a personal value that is not protected (an entry from before crypto-shredding)."""
    keys = personal_keys() if keys is None else keys

    def plain(value):
        if isinstance(value, list):
            return any(plain(v) for v in value)
        return value not in (None, "") and not (isinstance(value, dict) and (MARK in value or ERASED in value))

    def walk(value):
        if isinstance(value, dict):
            return any((plain(v) if k in keys else walk(v)) for k, v in value.items())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False

    return walk(payload)


def pseudonym_of(subject_id: str) -> str | None:
    return AuditSubjectKey.objects.filter(subject_id=str(subject_id)).values_list("pseudonym", flat=True).first()


def destroy(subject_id: str) -> AuditSubjectKey | None:
    """Destroy the subject's key (erasure): their protected values can no longer be read by anybody.

    The key row stays, without its key, so the pseudonym keeps naming the subject and later entries about them
    record their personal values as erased."""
    with transaction.atomic():
        row = AuditSubjectKey.objects.select_for_update().filter(subject_id=str(subject_id)).first()
        if row is None:
            row = key_for(str(subject_id))
        AuditSubjectKey.objects.filter(pk=row.pk).update(wrapped_key=None, destroyed_at=timezone.now())
    row.refresh_from_db()
    return row
