"""Key rotation: both keys pass during the window, the retired one fails after; command and admin flow, audited."""

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.core import incident_lock
from apps.erp import keyring, rotation
from apps.erp.models import ErpKey, IntegrationProfile, KeyState
from tests import factories
from tests.conftest import verified_client

from . import inbound_helpers
from .inbound_helpers import CURRENT, NEXT, problem, send

pytestmark = pytest.mark.django_db
profile = inbound_helpers.profile  # the fixture


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a, external_id="ERP-ROT")


def progress(value):
    return {"job_id": "ERP-ROT", "status": "running", "progress": value}


def test_outgoing_and_incoming_keys_pass_during_the_window_and_the_retired_key_fails_after(client, profile, job):
    assert send(client, progress(10), secret=CURRENT).status_code == 200  # outgoing
    assert send(client, progress(20), secret=NEXT).status_code == 200  # incoming
    result = rotation.rotate(profile, actor=None, source="test")
    assert result.retired_fingerprint == keyring.fingerprint(CURRENT)
    assert result.current_fingerprint == keyring.fingerprint(NEXT)
    problem(send(client, progress(30), secret=CURRENT), 401, "invalid-signature")  # retired
    assert send(client, progress(40), secret=NEXT).status_code == 200  # now current
    assert send(client, progress(50), secret=result.new_next_secret).status_code == 200  # the new next
    # Outbound signs with the new current key.
    assert keyring.signing_key(profile) == (NEXT, keyring.fingerprint(NEXT))


def test_a_rotation_keeps_one_current_and_one_next_and_stores_secrets_encrypted(profile):
    result = rotation.rotate(profile)
    states = sorted(ErpKey.objects.filter(profile=profile).values_list("state", flat=True))
    assert states == [KeyState.CURRENT, KeyState.NEXT, KeyState.RETIRED]
    stored = ErpKey.objects.get(profile=profile, state=KeyState.NEXT).secret_encrypted
    assert result.new_next_secret not in stored and len(result.new_next_secret) >= 40


def test_rotation_is_audited_without_the_secret(profile, superuser):
    result = rotation.rotate(profile, actor=superuser)
    entry = AuditLog.objects.get(action="erp.keys.rotated")
    assert entry.actor_id == str(superuser.pk) and entry.object_id == str(profile.pk)
    assert entry.payload["retired"] == keyring.fingerprint(CURRENT)
    assert result.new_next_secret not in str(entry.payload)


def test_a_profile_without_keys_starts_its_ring_from_the_environment_key(client, tenant_a, job, settings):
    settings.KEYRING_CURRENT = "env-current-key"
    bare = IntegrationProfile.objects.create(tenant=tenant_a, name="bare", ip_allowlist="127.0.0.1/32")
    from apps.erp import inbound_services

    inbound_services.set_inbound_token(bare, "bare-token-0123456789")
    assert send(client, progress(5), token="bare-token-0123456789", secret="env-current-key").status_code == 200
    result = rotation.rotate(bare)
    assert result.started and result.retired_fingerprint is None
    # The key the ERP uses today still works, and so does the new next one.
    assert send(client, progress(6), token="bare-token-0123456789", secret="env-current-key").status_code == 200
    assert send(client, progress(7), token="bare-token-0123456789", secret=result.new_next_secret).status_code == 200


def test_the_command_prints_the_new_next_secret_once(profile, capsys):
    call_command("rotate_erp_keys", profile.name)
    out = capsys.readouterr().out
    secret = re.search(r"(?:New next secret|Yeni sonraki gizli anahtar).*: (\S+)", out).group(1)
    assert keyring.fingerprint(secret) == ErpKey.objects.get(profile=profile, state=KeyState.NEXT).fingerprint
    assert AuditLog.objects.get(action="erp.keys.rotated").payload["source"] == "command"


def test_the_command_refuses_an_unknown_profile(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("rotate_erp_keys", "nope")


# ---------------------------------------------------------------- the admin flow
def url(profile):
    return reverse("erp-rotate-keys", args=[profile.pk])


def test_the_admin_flow_confirms_then_shows_the_new_secret_once(client, profile, role_users):
    verified_client(client, role_users["admin"])
    page = client.get(url(profile))
    assert page.status_code == 200
    assert keyring.fingerprint(CURRENT) in page.content.decode()
    done = client.post(url(profile))
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    secret = re.search(r'class="erp-new-secret">([^<]+)<', done.content.decode()).group(1)
    assert keyring.fingerprint(secret) == ErpKey.objects.get(profile=profile, state=KeyState.NEXT).fingerprint
    assert secret not in client.get(url(profile)).content.decode(), "shown once"
    assert AuditLog.objects.get(action="erp.keys.rotated").actor_id == str(role_users["admin"].pk)


def test_the_admin_flow_needs_the_capability_and_the_tenant(client, profile, role_users, tenant_b):
    verified_client(client, role_users["operator"])
    assert client.post(url(profile)).status_code == 403
    other = IntegrationProfile.objects.create(tenant=tenant_b, name="other")
    verified_client(client, role_users["admin"])
    assert client.post(url(other)).status_code == 404
    assert not AuditLog.objects.filter(action="erp.keys.rotated").exists()


def test_rotation_is_an_emergency_operation_under_the_incident_lock(client, profile, role_users):
    incident_lock.set_lock(True, reason="key leaked")
    verified_client(client, role_users["admin"])
    assert client.post(url(profile)).status_code == 200
    assert AuditLog.objects.filter(action="erp.keys.rotated").exists()
