"""Every failed sign-in step is a security event `sign_in_failed` (severity, client IP, request id, step),
counted in tezgah_security_events_total, with exactly one audit entry (`auth.login_failed`, or
`auth.step_up_failed` for step-up) per failure."""

import json

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services as account_services
from apps.audit.models import AuditLog
from apps.security import metrics
from apps.security.models import SecurityEvent
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loose_login_throttle")]

IP = "203.0.113.30"


@pytest.fixture
def staff(db):
    user = make_user("kemal", roles=["operator"])
    confirmed_device(user)
    return user


def counted(severity="low"):
    return metrics.SECURITY_EVENTS.labels("sign_in_failed", severity)._value.get()


def post(client, name, data, request_id):
    return client.post(reverse(f"admin:{name}"), data, REMOTE_ADDR=IP, HTTP_X_REQUEST_ID=request_id)


def wrong(device):
    near = {totp_code(device, offset_steps=s) for s in range(-3, 4)}
    return next(c for c in ("000000", "111111", "123456") if c not in near)


def only_failure(step, answer, *, severity="low", action="auth.login_failed"):
    """The one event and the one audit entry of the failure `answer` answered."""
    request_id = answer["X-Request-Id"]
    event = SecurityEvent.objects.get(event_type="sign_in_failed", request_id=request_id)
    assert (event.details["step"], event.severity, event.client_ip) == (step, severity, IP)
    entries = AuditLog.objects.filter(request_id=request_id).exclude(action="auth.password_accepted")
    assert [e.action for e in entries] == [action], "one audit entry per failure, no security.sign_in_failed"
    entry = entries.get()
    assert (entry.payload["step"], entry.payload["severity"], entry.payload["client_ip"]) == (step, severity, IP)
    assert entry.payload["request_id"] == request_id and entry.client_ip == IP
    return event, entry


def test_a_wrong_password_for_an_unknown_and_a_real_name_are_events_alike(client, staff):
    before = counted()
    for n, name in enumerate(("kemal", "nobody-at-all")):
        answer = post(client, "login", {"username": name, "password": "wrong"}, f"req-pw-{n}")
        assert answer.status_code == 200 and answer["X-Request-Id"] == f"req-pw-{n}"
        event, entry = only_failure("password", answer)
        assert event.username == name and event.actor is None
        assert entry.actor_type == "anonymous"
    assert counted() == before + 2


def test_a_wrong_totp_code_and_a_wrong_backup_code_are_events(client, staff, frozen):
    account_services.issue_backup_codes(staff)
    device = confirmed_device(staff)
    post(client, "login", {"username": "kemal", "password": PASSWORD}, "req-a")
    event, entry = only_failure("code", post(client, "mfa_verify", {"token": wrong(device)}, "req-totp"))
    assert event.username == "kemal" and entry.object_id == str(staff.pk)
    frozen.shift(70)  # past django-otp's own throttle
    only_failure("code", post(client, "mfa_verify", {"token": "0000000001"}, "req-backup"))


def test_a_wrong_enrolment_code_and_a_wrong_owner_code_are_events(client, db):
    fresh = make_user("yeni", roles=["operator"])
    post(client, "login", {"username": "yeni", "password": PASSWORD}, "req-b")
    client.get(reverse("admin:mfa_enrol"))
    pending = TOTPDevice.objects.get(user=fresh, confirmed=False)
    only_failure("enrolment", post(client, "mfa_enrol", {"token": wrong(pending)}, "req-enrol"))

    owner = make_user("sahip", roles=["operator"])
    owner.email, owner.mfa_owner_proof_required = "sahip@example.test", True
    owner.save(update_fields=["email", "mfa_owner_proof_required"])
    client.logout()
    post(client, "login", {"username": "sahip", "password": PASSWORD}, "req-c")
    post(client, "mfa_enrol", {"send": "1"}, "req-send")
    only_failure("owner_code", post(client, "mfa_enrol", {"token": "00000000"}, "req-owner"))


def test_a_failed_step_up_is_a_medium_event_with_its_own_audit_name(client, staff, frozen):
    verified_client(client, staff)
    before = counted("medium")
    answer = post(client, "mfa_step_up", {"token": wrong(confirmed_device(staff)), "next": "/admin/"}, "req-up")
    event, _entry = only_failure("step_up", answer, severity="medium", action="auth.step_up_failed")
    assert event.actor == staff
    assert counted("medium") == before + 1


def test_a_token_refused_for_a_locked_pair_is_a_medium_event(client, staff):
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": "kemal", "password": "bad"}, REMOTE_ADDR=IP)
    verified_client(client, staff)
    answer = client.post("/api/v1/auth/token/", REMOTE_ADDR=IP)
    assert answer.status_code == 429 and json.loads(answer.content)["type"].endswith("sign-in-locked")
    event, entry = only_failure("token", answer, severity="medium")
    assert event.actor == staff and entry.object_id == str(staff.pk)
