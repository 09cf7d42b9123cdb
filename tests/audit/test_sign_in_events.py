"""Sign-in steps leave audit entries with actor, client IP and request id."""

import pytest
from django.urls import reverse

from apps.accounts import services as account_services
from apps.audit.models import AuditLog
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code


@pytest.fixture
def staff(tenant_a):
    return make_user("girisci", roles=["operator"], tenants=[tenant_a])


def _actions():
    return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_a_wrong_password_is_recorded_with_ip_and_request_id(client):
    client.post(
        reverse("admin:login"),
        {"username": "nobody", "password": "wrong"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_REQUEST_ID="req-login-0001",
    )
    entry = AuditLog.objects.get(action="auth.login_failed")
    # issue 14: the failure is a security event too; its one audit entry carries severity, address and request id.
    assert entry.payload == {
        "step": "password",
        "username": "nobody",
        "severity": "low",
        "client_ip": "203.0.113.9",
        "request_id": "req-login-0001",
    }
    assert (entry.client_ip, entry.request_id, entry.actor_type) == ("203.0.113.9", "req-login-0001", "anonymous")


@pytest.mark.django_db
def test_a_totp_sign_in_a_logout_and_a_wrong_code_are_recorded(client, staff):
    device = confirmed_device(staff)
    client.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    client.post(reverse("admin:mfa_verify"), {"token": totp_code(device)})
    client.post(reverse("admin:logout"))
    assert _actions() == ["auth.password_accepted", "auth.login", "auth.logout"]
    assert AuditLog.objects.get(action="auth.login").payload == {"method": "totp"}
    assert AuditLog.objects.get(action="auth.logout").actor_id == str(staff.pk)
    client.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    wrong = f"{(int(totp_code(device)) + 1) % 1000000:06d}"
    client.post(reverse("admin:mfa_verify"), {"token": wrong})
    failed = AuditLog.objects.get(action="auth.login_failed")
    assert failed.payload["step"] == "code" and failed.object_id == str(staff.pk)
    assert failed.payload["severity"] == "low" and failed.payload["event"]


@pytest.mark.django_db
def test_enrolment_and_a_backup_code_sign_in_are_recorded(client, staff):
    codes = account_services.issue_backup_codes(staff)
    confirmed_device(staff)
    client.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    client.post(reverse("admin:mfa_verify"), {"token": codes[0]})
    used = AuditLog.objects.get(action="auth.backup_code_used")
    assert used.payload == {"remaining": len(codes) - 1}
    assert AuditLog.objects.get(action="auth.login").payload == {"method": "backup_code"}
    assert codes[0] not in str(list(AuditLog.objects.values_list("payload", flat=True)))


@pytest.mark.django_db
def test_first_enrolment_is_recorded(client, tenant_a):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = make_user("yeni", roles=["operator"], tenants=[tenant_a])
    client.post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    client.get(reverse("admin:mfa_enrol"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    client.post(reverse("admin:mfa_enrol"), {"token": totp_code(device)})
    enrolled = AuditLog.objects.get(action="auth.mfa_enrolled")
    assert enrolled.object_id == str(user.pk) and enrolled.payload["backup_codes"] == 10
    assert AuditLog.objects.get(action="auth.login").payload == {"method": "enrolment"}
