"""Sign-in lockout (django-axes) on every path: password, TOTP code, backup code, owner code, token endpoint;
keyed by username and client IP, escalating, and blocking an address after three lockouts."""

import json
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice

from apps.accounts import services as account_services
from apps.audit.models import AuditLog
from apps.security.models import IPListEntry, Lockout, SecurityEvent
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loose_login_throttle")]

ATTACKER = "203.0.113.66"
NAT = "198.51.100.7"


@pytest.fixture
def staff(db):
    user = make_user("ayse", roles=["operator"])
    confirmed_device(user)
    return user


def password(client, username, pw=PASSWORD, ip=ATTACKER, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": pw}, REMOTE_ADDR=ip, **extra)


def code(client, token, ip=ATTACKER):
    return client.post(reverse("admin:mfa_verify"), {"token": token}, REMOTE_ADDR=ip)


def wrong_code(device):
    near = {totp_code(device, offset_steps=s) for s in range(-3, 4)}
    return next(c for c in ("000000", "111111", "123456", "654321") if c not in near)


def fail_passwords(client, username, n, ip=ATTACKER):
    return [password(client, username, "wrong-password", ip=ip) for _ in range(n)]


def test_five_wrong_passwords_lock_the_pair_with_a_turkish_page_and_retry_after(client, staff):
    answers = fail_passwords(client, "ayse", 5)
    assert [a.status_code for a in answers[:4]] == [200] * 4
    locked = answers[4]
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 14 * 60
    page = locked.content.decode()
    assert "çok fazla başarısız" in page and "sonrasında yeniden deneyin" in page
    assert "ayse" not in page, "the page never names the account"
    # Even the right password is refused now, with the same page.
    right = password(client, "ayse")
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    lock = Lockout.objects.get()
    assert (lock.username, lock.ip_address, lock.level) == ("ayse", ATTACKER, 0)
    assert lock.until - lock.locked_at == timedelta(minutes=15)
    event = SecurityEvent.objects.get(event_type="account_locked")
    assert event.severity == "high" and event.client_ip == ATTACKER
    entry = AuditLog.objects.get(action="security.account_locked")
    assert entry.payload["severity"] == "high" and entry.payload["client_ip"] == ATTACKER
    assert entry.payload["request_id"] == locked["X-Request-Id"]


def test_an_unknown_username_locks_exactly_like_a_real_one(client, staff):
    real = fail_passwords(client, "ayse", 5)[-1]
    ghost = fail_passwords(client, "nobody-here", 5)[-1]
    assert real.status_code == ghost.status_code == 429
    strip = lambda r: r.content.decode().split("<code>")[0]  # noqa: E731 - the request id differs
    assert strip(real).replace(real["Retry-After"], "") == strip(ghost).replace(ghost["Retry-After"], "")


def test_fifty_users_behind_one_nat_address_keep_signing_in_while_one_account_is_attacked(client, frozen, settings):
    """A shift change: fifty people behind one NAT address each give password and code in the same minute,
    through the real sign-in throttle (THROTTLE_LOGIN_RATE / THROTTLE_LOGIN_USER_RATE at their defaults),
    while an attacker behind the same address hammers one of the accounts."""
    from config import settings as project

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        **{"DEFAULT_THROTTLE_RATES": project.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]},
    }
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"] == "300/min"
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_user"] == "10/min"
    users = [make_user(f"isci{i:02d}", roles=["operator"]) for i in range(50)]
    devices = {u.pk: confirmed_device(u) for u in users}
    victim = users[0]
    attack = fail_passwords(client, victim.username, 30, ip=NAT)
    assert [a.status_code for a in attack[:5]] == [200] * 4 + [429], "axes locks (victim, NAT)"
    throttled = [a for a in attack if a["Content-Type"].startswith("text/plain")]
    assert len(throttled) == 20, "the account's own budget stops the rest, without spending the address's"
    assert password(client, victim.username, ip=NAT).status_code == 429
    for user in users[1:]:
        client.logout()
        assert password(client, user.username, ip=NAT).status_code == 302, user.username
        assert code(client, totp_code(devices[user.pk]), ip=NAT).status_code == 302, user.username
        assert client.session.get("_auth_user_id") == str(user.pk)
    assert Lockout.active().count() == 1
    # The victim from their own, other address is not locked either.
    client.logout()
    assert password(client, victim.username, ip="192.0.2.10").status_code == 302


def test_wrong_totp_codes_count_against_the_same_account(client, staff, frozen):
    device = confirmed_device(staff)
    fail_passwords(client, "ayse", 2)
    assert password(client, "ayse").status_code == 302
    for _ in range(2):
        code(client, wrong_code(device))
        frozen.shift(3)  # past django-otp's own per-device throttle
    locked = code(client, wrong_code(device))
    assert locked.status_code == 429, "2 passwords + 3 codes = 5 failures"
    assert Lockout.objects.filter(username="ayse", ip_address=ATTACKER).exists()
    # The password step is forgotten and the right code does not help.
    assert code(client, totp_code(device)).status_code in (302, 429)
    assert "_auth_user_id" not in client.session


def test_backup_codes_count_too(client, staff, frozen):
    codes = account_services.issue_backup_codes(staff)
    assert StaticDevice.objects.filter(user=staff).exists()
    assert password(client, "ayse").status_code == 302
    answers = []
    for _ in range(5):
        answers.append(code(client, "0000000000" if codes[0] != "0000000000" else "1111111111"))
        frozen.shift(70)
    assert answers[-1].status_code == 429
    # A valid backup code is refused while locked, and not spent.
    assert code(client, codes[0]).status_code in (302, 429)
    assert "_auth_user_id" not in client.session


def test_a_lockout_ends_the_accounts_sessions_and_tokens(client, staff):
    from knox.models import AuthToken

    verified_client(client, staff)
    AuthToken.objects.create(user=staff)
    assert client.get(reverse("admin:index")).status_code == 200
    fail_passwords(client, "ayse", 5)
    assert client.get(reverse("admin:index")).status_code == 302, "signed out"
    assert not AuthToken.objects.filter(user=staff).exists()
    assert AuditLog.objects.filter(action="security.session_terminated").exists()


def test_the_token_endpoint_refuses_a_locked_pair_with_a_problem(client, staff):
    fail_passwords(client, "ayse", 5, ip="127.0.0.1")
    verified_client(client, staff)  # a session from before the lockout, say
    response = client.post("/api/v1/auth/token/", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    assert json.loads(response.content)["type"].endswith("sign-in-locked")


def test_a_locked_api_sign_in_answers_problem_json(client, staff):
    answers = fail_passwords(client, "ayse", 5)
    assert answers[-1]["Content-Type"].startswith("text/html")
    json_answer = password(client, "ayse", HTTP_ACCEPT="application/json")
    assert json_answer.status_code == 429 and json_answer["Content-Type"] == "application/problem+json"


def test_lockouts_escalate_and_the_third_from_one_address_blocks_it(client, staff, settings):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        fail_passwords(client, "ayse", 5)
        first = Lockout.objects.get()
        assert first.duration == timedelta(minutes=15)
        traveller.shift(timedelta(minutes=16))
        assert password(client, "ayse").status_code == 302, "the lockout ended by itself"
        client.logout()
        fail_passwords(client, "ayse", 5)
        second = Lockout.objects.latest("locked_at")
        assert second.level == 1 and second.duration == timedelta(minutes=30)
        traveller.shift(timedelta(minutes=20))
        assert password(client, "ayse").status_code == 429, "30 minutes this time"
        traveller.shift(timedelta(minutes=11))
        assert not IPListEntry.objects.exists()
        fail_passwords(client, "someone-else", 5)  # a third lockout from the address, any account
        block = IPListEntry.objects.get()
        assert (block.network, block.list_type, block.automatic) == (f"{ATTACKER}/32", "blacklist", True)
        assert block.expires_at == timezone.now() + timedelta(hours=24)
        assert SecurityEvent.objects.filter(event_type="ip_auto_blocked", severity="high").exists()
        assert client.get(reverse("admin:login"), REMOTE_ADDR=ATTACKER).status_code == 403
        assert client.get(reverse("admin:login"), REMOTE_ADDR=NAT).status_code == 200
        traveller.shift(timedelta(hours=24, seconds=1))
        assert client.get(reverse("admin:login"), REMOTE_ADDR=ATTACKER).status_code == 200, "the block expired"


def test_an_allow_entry_protects_an_address_from_the_automatic_block(client, staff, superuser):
    from apps.security import iplists

    iplists.add_entry(network=NAT, list_type="whitelist", reason="fabrika NAT", actor=superuser)
    for name in ("a1", "a2", "a3"):
        fail_passwords(client, name, 5, ip=NAT)
    assert Lockout.objects.filter(ip_address=NAT).count() == 3
    assert not IPListEntry.objects.filter(list_type="blacklist").exists()


def test_a_successful_sign_in_resets_the_count(client, staff, frozen):
    fail_passwords(client, "ayse", 4)
    assert password(client, "ayse").status_code == 302
    assert code(client, totp_code(confirmed_device(staff))).status_code == 302
    assert not AccessAttempt.objects.filter(username="ayse").exists()


def test_the_users_admin_unlock_action_lifts_the_axes_lock(client, staff, superuser):
    fail_passwords(client, "ayse", 5)
    assert Lockout.active().count() == 1
    admin = verified_client(client, superuser)
    admin.post(reverse("admin:accounts_user_changelist"), {"action": "unlock_sign_in", "_selected_action": [staff.pk]})
    assert Lockout.active().count() == 0 and not AccessAttempt.objects.filter(username="ayse").exists()
    assert AuditLog.objects.filter(action="security.account_unlocked").exists()
    client.logout()
    assert password(client, "ayse").status_code == 302
