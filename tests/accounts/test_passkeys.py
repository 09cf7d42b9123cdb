"""Passkeys as the second factor, without a browser: who gets the button, what a refused assertion costs, what
a removal ends, and where the JSON halves refuse. The real ceremonies run in test_passkeys_browser.py."""

import json
import time
from base64 import urlsafe_b64encode
from importlib import import_module

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts import mfa_session
from apps.audit.models import AuditLog
from apps.security.models import Lockout, SecurityEvent, UserSession
from tests.conftest import PASSWORD, confirmed_device, make_passkey, make_user, verified_client

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def _loose_throttle(settings):
    # The per-address sign-in throttle is another control; these tests are about axes' lockout.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "10000/min"},
    }


@pytest.fixture
def staff(db):
    user = make_user("ayse", roles=["operator"])
    confirmed_device(user)
    return user


def password_step(client, username="ayse"):
    response = client.post(reverse("admin:login"), {"username": username, "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert response.status_code == 302
    return response


def b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).decode().rstrip("=")


def relayed_assertion(passkey, challenge: str, origin="https://tezgah-giris.example") -> dict:
    """An assertion for `passkey` and the right challenge, as a look-alike site relaying it would present it."""
    client_data = json.dumps({"type": "webauthn.get", "challenge": challenge, "origin": origin}).encode()
    return {
        "id": b64(passkey.credential_id),
        "rawId": b64(passkey.credential_id),
        "type": "public-key",
        "response": {
            "authenticatorData": b64(b"\x00" * 37),
            "clientDataJSON": b64(client_data),
            "signature": b64(b"0"),
        },
        "clientExtensionResults": {},
    }


def begin(client):
    response = client.post(reverse("admin:mfa_passkey_begin"), REMOTE_ADDR=ATTACKER)
    assert response.status_code == 200, response.content
    return response.json()


def complete(client, body):
    return client.post(
        reverse("admin:mfa_passkey_complete"), json.dumps(body), content_type="application/json", REMOTE_ADDR=ATTACKER
    )


# ---------------------------------------------------------------- the button
def test_a_user_without_a_passkey_sees_no_passkey_button(client, staff):
    password_step(client)
    page = client.get(reverse("admin:mfa_verify")).content.decode()
    assert 'name="token"' in page
    assert "passkey-verification-button" not in page
    assert "otp_webauthn_auth.js" not in page


def test_a_user_with_a_passkey_gets_the_button_and_the_script_from_our_static_files(client, staff):
    make_passkey(staff)
    password_step(client)
    page = client.get(reverse("admin:mfa_verify"), HTTP_ACCEPT_LANGUAGE="tr").content.decode()
    assert 'id="passkey-verification-button"' in page
    assert "Geçiş anahtarı ile doğrula" in page
    assert f"{settings.STATIC_URL}django_otp_webauthn/otp_webauthn_auth.js" in page
    config = json.loads(page.split('id="otp_webauthn_config" type="application/json">')[1].split("</script>")[0])
    assert config["completeAuthenticationUrl"] == reverse("admin:mfa_passkey_complete")


def test_the_challenge_names_only_the_pending_users_passkeys(client, staff):
    mine = make_passkey(staff)
    make_passkey(make_user("baska", roles=["operator"]))
    password_step(client)
    options = begin(client)
    assert [c["id"] for c in options["allowCredentials"]] == [b64(mine.credential_id)]
    assert options["rpId"] == settings.OTP_WEBAUTHN_RP_ID


def test_the_passkey_step_needs_the_password_step_first(client, staff):
    make_passkey(staff)
    response = client.post(reverse("admin:mfa_passkey_begin"))
    assert response.status_code == 403 and "detail" in response.json()
    assert complete(client, {}).status_code == 403


# ---------------------------------------------------------------- refusals count toward the lockout
def test_a_relayed_or_forged_assertion_is_refused_and_counts_toward_the_lockout(client, staff):
    passkey = make_passkey(staff)
    now = time.time()
    with time_machine.travel(now, tick=False):
        password_step(client)
        for attempt in range(settings.AXES_FAILURE_LIMIT):
            options = begin(client)
            response = complete(client, relayed_assertion(passkey, options["challenge"]))
            if attempt < settings.AXES_FAILURE_LIMIT - 1:
                assert response.status_code == 400, response.content
                assert "_auth_user_id" not in client.session
    assert Lockout.objects.filter(username="ayse", ip_address=ATTACKER).exists()
    failures = AuditLog.objects.filter(action="auth.login_failed").values_list("payload", flat=True)
    assert sum(p.get("step") == "passkey" for p in failures) == settings.AXES_FAILURE_LIMIT
    # The password step is forgotten: no further passkey attempt for this sign-in.
    assert client.post(reverse("admin:mfa_passkey_begin"), REMOTE_ADDR=ATTACKER).status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_garbage_and_replayed_state_are_refusals_not_errors(client, staff):
    make_passkey(staff)
    password_step(client)
    assert complete(client, {"id": "nope"}).status_code == 400  # no challenge was handed out
    begin(client)
    response = client.post(
        reverse("admin:mfa_passkey_complete"), b"{not json", content_type="application/json", REMOTE_ADDR=ATTACKER
    )
    assert response.status_code == 400
    assert complete(client, {}).status_code == 400  # the challenge was spent by the previous answer


# ---------------------------------------------------------------- removal
def _live_session(user) -> Client:
    other = verified_client(Client(), user)  # force_login: tracked by the session list (user_logged_in)
    assert UserSession.objects.filter(session_key=other.session.session_key, ended_at__isnull=True).exists()
    return other


def test_removing_a_passkey_ends_the_owners_other_sessions_and_is_audited(client, staff):
    passkey = make_passkey(staff, name="YubiKey")
    verified_client(client, staff)
    other = _live_session(staff)
    session = client.session
    session[mfa_session.STEPUP_KEY] = time.time()
    session.save()

    response = client.post(reverse("admin:mfa_passkeys"), {"remove": passkey.pk})

    assert response.status_code == 302 and response["Location"] == reverse("admin:mfa_passkeys")
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert not store().exists(other.session.session_key)
    ended = UserSession.objects.get(session_key=other.session.session_key)
    assert ended.ended_at is not None and ended.end_reason == "mfa_device_removed"
    # The session that gave the fresh second factor stays signed in.
    assert client.get(reverse("admin:index")).status_code == 200
    removed = AuditLog.objects.get(action="auth.mfa_device_removed")
    assert removed.payload["kind"] == "passkey" and removed.payload["device"] == passkey.persistent_id
    assert SecurityEvent.objects.filter(event_type="mfa_device_removed", username="ayse").exists()


def test_removing_a_passkey_needs_a_fresh_second_factor(client, staff):
    passkey = make_passkey(staff)
    verified_client(client, staff)
    response = client.post(reverse("admin:mfa_passkeys"), {"remove": passkey.pk})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:mfa_step_up"))
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()


def test_nobody_removes_another_users_passkey_from_the_passkeys_page(client, staff):
    theirs = make_passkey(make_user("baska", roles=["operator"]))
    verified_client(client, staff)
    session = client.session
    session[mfa_session.STEPUP_KEY] = time.time()
    session.save()
    assert client.post(reverse("admin:mfa_passkeys"), {"remove": theirs.pk}).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()


def test_registering_needs_a_name_and_a_fresh_second_factor(client, staff):
    verified_client(client, staff)
    assert client.post(reverse("admin:mfa_passkey_register_begin")).status_code == 403
    response = client.post(reverse("admin:mfa_passkeys"), {"name": "İş dizüstü"})
    assert response["Location"].startswith(reverse("admin:mfa_step_up"))
    assert client.post(reverse("admin:mfa_passkey_register_begin")).status_code == 403
    session = client.session
    session[mfa_session.STEPUP_KEY] = time.time()
    session.save()
    options = client.post(reverse("admin:mfa_passkey_register_begin")).json()
    assert options["rp"] == {"id": settings.OTP_WEBAUTHN_RP_ID, "name": settings.OTP_WEBAUTHN_RP_NAME}
    assert options["user"]["name"] == "ayse"
