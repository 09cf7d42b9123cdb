"""Passkeys and security keys (WebAuthn, by django-otp-webauthn) as an admin's second factor beside TOTP.

A passkey answers only for the origin it was made on, so a look-alike sign-in page cannot relay it the way
it can relay a typed TOTP code. It is a second factor here, after the password (passwordless sign-in is
off in settings). The library's helper runs the ceremonies; this module keeps the state between the two
halves of each in the session, names the credential, and writes the audit entries and security events.
"""

from logging import getLogger

from django.db import transaction
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions
from webauthn.helpers.exceptions import WebAuthnException

from apps.audit import services as audit

REGISTER_STATE_KEY = "passkey_register_state"
AUTHENTICATE_STATE_KEY = "passkey_authenticate_state"
NAME_MAX_LENGTH = 64
_logger = getLogger("apps.accounts.passkeys")


class PasskeyRefused(Exception):
    """A ceremony that did not verify: no state, a wrong origin or challenge, a foreign or unknown credential."""


def confirmed_passkeys(user):
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def has_passkey(user) -> bool:
    return confirmed_passkeys(user).exists()


def _helper(request):
    return WebAuthnCredential.get_webauthn_helper(request=request)


def _pop_state(request, key):
    # Popped and saved before anything is checked, so one challenge is never answered twice.
    state = request.session.pop(key, None)
    request.session.save()
    if not state:
        raise PasskeyRefused("no ceremony under way")
    return state


def _verified(call):
    """Run one verification of browser-supplied data; any way it fails is a refusal, never a 500."""
    try:
        with rewrite_exceptions(logger=_logger):
            return call()
    except (webauthn_errors.OTPWebAuthnApiError, WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)) from exc


# ---------------------------------------------------------------- registration (a verified admin)
def begin_registration(request, user) -> dict:
    """Options for navigator.credentials.create(); the caller has checked a fresh second factor."""
    options, state = _helper(request).register_begin(user=user)
    request.session[REGISTER_STATE_KEY] = state
    return options


def complete_registration(request, user, data, *, name: str) -> WebAuthnCredential:
    """Verify the browser's attestation and store the passkey as a confirmed device named `name`; audited."""
    from apps.security.events import record_event
    from apps.security.models import EventType, Severity

    state = _pop_state(request, REGISTER_STATE_KEY)
    with transaction.atomic():
        device = _verified(lambda: _helper(request).register_complete(user=user, state=state, data=data))
        device.name = (name or "").strip()[:NAME_MAX_LENGTH] or "passkey"
        device.confirmed = True
        device.save(update_fields=["name", "confirmed"])
        details = {"device": device.persistent_id, "kind": "passkey", "name": device.name}
        audit.record(user, "auth.mfa_device_added", device, details)
        record_event(EventType.MFA_DEVICE_ADDED, Severity.MEDIUM, actor=user, username=user.get_username(), **details)
    return device


def remove(device: WebAuthnCredential, *, actor) -> None:
    """Delete a passkey; audited. Deleting a confirmed device ends the owner's other sessions and API tokens
    (apps.security.signals); the caller keeps the actor's own session when the actor is the owner."""
    from apps.security.events import record_event
    from apps.security.models import EventType, Severity

    owner = device.user
    details = {"device": device.persistent_id, "kind": "passkey", "name": device.name, "user_id": owner.pk}
    with transaction.atomic():
        audit.record(actor, "auth.mfa_device_removed", owner, details)
        record_event(
            EventType.MFA_DEVICE_REMOVED, Severity.MEDIUM, actor=actor, username=owner.get_username(), **details
        )
        device.delete()


# ---------------------------------------------------------------- the sign-in's second step
def begin_authentication(request, user) -> dict:
    """Options for navigator.credentials.get(), limited to `user`'s passkeys (the password step's user)."""
    # The password was the first factor; the authenticator's own PIN or biometric is not asked for again.
    options, state = _helper(request).authenticate_begin(user=user, require_user_verification=False)
    request.session[AUTHENTICATE_STATE_KEY] = state
    return options


def complete_authentication(request, user, data) -> WebAuthnCredential:
    """The confirmed passkey of `user` that signed this sign-in's challenge, or PasskeyRefused."""
    state = _pop_state(request, AUTHENTICATE_STATE_KEY)
    device = _verified(lambda: _helper(request).authenticate_complete(user=user, state=state, data=data))
    if not device.confirmed or device.user_id != user.pk:
        raise PasskeyRefused("credential not usable")
    return device
