"""A profile's HMAC key ring: which secret signs outbound messages and which verify inbound ones.

Secrets live encrypted (Fernet) in `ErpKey` rows; a profile with no keys of its own uses the
environment's KEYRING_CURRENT (or ERP_SHARED_SECRET) and KEYRING_NEXT.
"""

import base64
import hashlib
import secrets as random_secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .models import ErpKey, KeyState


class MissingKey(LookupError):
    """The profile has no current key and the environment gives none either."""


def _fernet() -> Fernet:
    configured = settings.ERP_KEYRING_ENCRYPTION_KEY
    if configured:
        try:
            return Fernet(configured.encode())
        except ValueError:
            raise ImproperlyConfigured(
                "ERP_KEYRING_ENCRYPTION_KEY must be a Fernet key (urlsafe base64, 32 bytes)"
            ) from None
    derived = hashlib.sha256(b"tezgah-erp-keyring:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "An ERP key cannot be decrypted: ERP_KEYRING_ENCRYPTION_KEY (or DJANGO_SECRET_KEY) changed"
        ) from None


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def new_secret() -> str:
    return random_secrets.token_urlsafe(32)


def _rows(profile):
    if profile is None or profile.pk is None:
        return {}
    return {k.state: k for k in ErpKey.objects.filter(profile=profile, state__in=[KeyState.CURRENT, KeyState.NEXT])}


def signing_key(profile) -> tuple[str, str]:
    """(secret, fingerprint) that signs outbound messages of `profile` now."""
    row = _rows(profile).get(KeyState.CURRENT)
    if row is not None:
        return decrypt(row.secret_encrypted), row.fingerprint
    secret = settings.KEYRING_CURRENT or settings.ERP_SHARED_SECRET
    if not secret:
        raise MissingKey(f"ERP profile {profile} has no current key; set KEYRING_CURRENT or add one in the admin")
    return secret, fingerprint(secret)


def verification_keys(profile) -> list[tuple[str, str]]:
    """(secret, fingerprint) pairs an inbound signature may match: the current key, then the next one."""
    rows = _rows(profile)
    if rows:
        return [
            (decrypt(r.secret_encrypted), r.fingerprint)
            for s in (KeyState.CURRENT, KeyState.NEXT)
            if (r := rows.get(s))
        ]
    found = [s for s in (settings.KEYRING_CURRENT or settings.ERP_SHARED_SECRET, settings.KEYRING_NEXT) if s]
    return [(s, fingerprint(s)) for s in dict.fromkeys(found)]


def add_key(profile, secret: str, *, state: str) -> ErpKey:
    """Store `secret` as the profile's current or next key (the caller holds the transaction and audits it)."""
    return ErpKey.objects.create(
        profile=profile, state=state, secret_encrypted=encrypt(secret), fingerprint=fingerprint(secret)
    )


def token_hash(token: str) -> str:
    """What a profile stores of its inbound bearer token: enough to find and check it, not to read it."""
    return hashlib.sha256(token.encode()).hexdigest()
