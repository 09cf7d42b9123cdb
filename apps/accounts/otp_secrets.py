"""MFA secrets at rest: TOTP keys encrypted (AES-GCM), backup codes stored as keyed hashes.

Both use the key ring in OTP_ENCRYPTION_KEY, which lives outside the database: a copy of the database alone
yields neither a working authenticator secret nor a backup code. The first key encrypts and hashes; every
key decrypts and verifies, so a new key is put first and the old one kept until `reencrypt_otp_secrets`
has run and the old backup codes are replaced.
"""

import base64
import hashlib
import hmac
import os
from functools import cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

# "v1:<key id>:<base64url(nonce | ciphertext | tag)>": 74 characters for django-otp's 20-byte keys, within the
# 80 its column holds.
_PREFIX = "v1:"
_AAD = b"tezgah:otp_totp.totpdevice.key"
_NONCE_BYTES = 12
# "h<key id, 2 chars><hash, 13 chars>": 16 characters, what django-otp's static token column holds (78 bits of
# an HMAC whose key an attacker does not have).
_CODE_PREFIX = "h"
_CODE_HASH_CHARS = 13


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def _ring(configured: str) -> tuple[tuple[str, bytes], ...]:
    """[(key id, 32-byte key)] from OTP_ENCRYPTION_KEY, first = current."""
    keys = []
    for item in (part.strip() for part in configured.split(",")):
        if not item:
            continue
        try:
            key = _unb64(item)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                "OTP_ENCRYPTION_KEY holds comma-separated urlsafe-base64 keys of 32 bytes "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        keys.append((hashlib.sha256(key).hexdigest()[:6], key))
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured("Set OTP_ENCRYPTION_KEY (or OTP_ENCRYPTION_KEY_FILE); `make run` writes one")
        # Development only: a key derived from DJANGO_SECRET_KEY, so a bare DEBUG checkout still works.
        key = hashlib.sha256(b"tezgah.otp-encryption:" + settings.SECRET_KEY.encode()).digest()
        keys.append((hashlib.sha256(key).hexdigest()[:6], key))
    return tuple(keys)


def key_ring():
    return _ring(settings.OTP_ENCRYPTION_KEY)


def is_encrypted(stored: str) -> bool:
    return stored.startswith(_PREFIX)


def encrypt_totp_key(hex_key: str) -> str:
    key_id, key = key_ring()[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, bytes.fromhex(hex_key), _AAD)
    return f"{_PREFIX}{key_id}:{_b64(nonce + sealed)}"


def decrypt_totp_key(stored: str) -> str:
    """The hex key; a value not yet encrypted (before the data migration) is returned as it is."""
    if not is_encrypted(stored):
        return stored
    key_id, _, payload = stored[len(_PREFIX) :].partition(":")
    key = dict(key_ring()).get(key_id)
    if key is None:
        raise ImproperlyConfigured(
            f"A TOTP key is encrypted with key {key_id}, which OTP_ENCRYPTION_KEY no longer holds"
        )
    raw = _unb64(payload)
    return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).hex()


def key_id_of(stored: str) -> str | None:
    return stored[len(_PREFIX) :].partition(":")[0] if is_encrypted(stored) else None


def _code_digest(key_id: str, key: bytes, code: str) -> str:
    mac = hmac.new(key, b"tezgah:backup-code:" + code.encode(), hashlib.sha256).digest()
    return f"{_CODE_PREFIX}{key_id[:2]}{_b64(mac)[:_CODE_HASH_CHARS]}"


def hash_backup_code(code: str) -> str:
    key_id, key = key_ring()[0]
    return _code_digest(key_id, key, code)


def is_hashed_code(stored: str) -> bool:
    return len(stored) == 1 + 2 + _CODE_HASH_CHARS and stored.startswith(_CODE_PREFIX) and not stored.isdigit()


def matching_code(stored_codes, code: str):
    """The stored hash among `stored_codes` that `code` matches, or None; compares with every one, in constant
    time, under every key of the ring."""
    candidates = [_code_digest(key_id, key, code) for key_id, key in key_ring()]
    found = None
    for stored in stored_codes:
        for candidate in candidates:
            if hmac.compare_digest(stored.encode(), candidate.encode()):
                found = stored
    return found


class EncryptedTOTPKeyField(models.CharField):
    """django-otp's TOTPDevice.key, encrypted in the column and plain hex in Python.

    Installed on TOTPDevice's own field by AccountsConfig.ready(): the one stored column changes, while
    django-otp's verify_token, config_url, admin QR page and `bin_key` keep reading hex as before.
    """

    def from_db_value(self, value, expression, connection):
        return decrypt_totp_key(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt_totp_key(value) if value and not is_encrypted(value) else value

    def deconstruct(self):
        # Migrations keep seeing django-otp's CharField: the column's type and length do not change.
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


def install_encrypted_totp_key() -> None:
    # A wrapper field over subclassing: django-otp's TOTPDevice is concrete, so an own device model would mean a
    # second table, new admin URLs and a copy of its TOTP logic; swapping the field's class changes only storage.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    field = TOTPDevice._meta.get_field("key")
    if not isinstance(field, EncryptedTOTPKeyField):
        field.__class__ = EncryptedTOTPKeyField


def reencrypt_all() -> dict:
    """Re-encrypt every TOTP key under the current key; count backup codes hashed under other keys."""
    from django.db import transaction
    from django_otp.plugins.otp_static.models import StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    current_id = key_ring()[0][0]
    done = 0
    with transaction.atomic():
        for device in TOTPDevice.objects.select_for_update().only("pk", "key"):
            # Loading decrypted the key; saving encrypts it under the current key.
            TOTPDevice.objects.filter(pk=device.pk).update(key=encrypt_totp_key(device.key))
            done += 1
    old_codes = sum(1 for token in StaticToken.objects.values_list("token", flat=True) if token[1:3] != current_id[:2])
    return {"totp": done, "old_codes": old_codes}
