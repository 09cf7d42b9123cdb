"""Unlocking an account: the wrong-code lockout of its second factors; an emergency op under the incident lock."""

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services
from apps.audit.models import AuditLog
from apps.core import incident_lock
from tests.conftest import confirmed_device, make_user, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked_out(db):
    """An operator whose authenticator refused a wrong code: django-otp now refuses any code for a while
    (longer after each further failure)."""
    user = make_user("kilitli", staff=False)
    device = confirmed_device(user)
    assert not device.verify_token("000000")
    device.refresh_from_db()
    assert device.throttling_failure_count == 1 and not device.verify_is_allowed()[0]
    return user


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user)


def test_unlocking_clears_the_lockout_and_is_audited(locked_out, superuser):
    assert services.unlock_sign_in(locked_out, actor=superuser) == 1
    device = _device(locked_out)
    assert device.throttling_failure_count == 0 and device.verify_is_allowed()[0]
    entry = AuditLog.objects.get(action="accounts.sign_in_unlocked")
    assert entry.object_id == str(locked_out.pk) and entry.actor_id == str(superuser.pk)
    assert entry.payload == {"devices": [device.persistent_id]}
    assert services.unlock_sign_in(locked_out, actor=superuser) == 0, "nothing left to unlock"


def _unlock_in_admin(client, user):
    return client.post(
        reverse("admin:accounts_user_changelist"), {"action": "unlock_sign_in", "_selected_action": [user.pk]}
    )


def test_the_admin_action_unlocks_even_while_the_incident_lock_is_on(client, superuser, locked_out):
    incident_lock.set_lock(True, reason="credential stuffing", source="command")
    admin = verified_client(client, superuser)
    assert _unlock_in_admin(admin, locked_out).status_code == 302
    assert _device(locked_out).throttling_failure_count == 0
    assert AuditLog.objects.filter(action="accounts.sign_in_unlocked", object_id=str(locked_out.pk)).exists()
    messages = [str(m) for m in admin.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").context["messages"]]
    assert any("kilitli" in m for m in messages)


def test_left_out_of_the_emergency_operations_it_is_refused_while_locked(client, superuser, locked_out, settings):
    settings.INCIDENT_LOCK_EMERGENCY_OPS = ["incident_lock"]
    incident_lock.set_lock(True, reason="credential stuffing", source="command")
    _unlock_in_admin(verified_client(client, superuser), locked_out)
    assert _device(locked_out).throttling_failure_count == 1
    assert not AuditLog.objects.filter(action="accounts.sign_in_unlocked").exists()


def test_a_tenant_admin_cannot_unlock_a_superuser(client, tenant_a, role_users):
    boss = make_user("patron", superuser=True, tenants=[tenant_a])
    device = confirmed_device(boss)
    device.verify_token("000000")
    _unlock_in_admin(verified_client(client, role_users["admin"]), boss)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
