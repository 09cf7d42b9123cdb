"""The device cookie in the lockout key: a browser that signed in fully before keeps signing in while an
attacker behind the same address locks (username, address); a forged, tampered or somebody else's cookie
counts by address; a device that fails five times locks (username, device) only."""

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.urls import reverse

from apps.security import lockout
from apps.security.models import IPListEntry, Lockout, SecurityEvent
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loose_login_throttle")]

NAT = "198.51.100.7"
ELSEWHERE = "192.0.2.44"


@pytest.fixture
def alice(db):
    user = make_user("alice", roles=["operator"])
    confirmed_device(user)
    return user


@pytest.fixture
def bob(db):
    user = make_user("bob", roles=["operator"])
    confirmed_device(user)
    return user


def password(client, username, pw=PASSWORD, ip=NAT):
    return client.post(reverse("admin:login"), {"username": username, "password": pw}, REMOTE_ADDR=ip)


def full_sign_in(client, user, ip=NAT):
    assert password(client, user.username, ip=ip).status_code == 302
    answer = client.post(reverse("admin:mfa_verify"), {"token": totp_code(confirmed_device(user))}, REMOTE_ADDR=ip)
    assert answer.status_code == 302, answer.content[:300]
    assert client.session.get("_auth_user_id") == str(user.pk)
    return answer


def fail(client, username, n, ip=NAT):
    return [password(client, username, "wrong-password", ip=ip) for _ in range(n)]


def sign_out(client, traveller):
    """The browser signs out (its cookies stay: Client.logout() would drop them) and the next TOTP step comes."""
    assert client.post(reverse("admin:logout")).status_code in (200, 302)
    traveller.shift(30)


def device_cookie(client):
    return client.cookies[lockout.settings.DEVICE_COOKIE_NAME].value


def test_a_full_sign_in_gives_a_signed_httponly_lax_device_cookie_and_the_password_step_alone_does_not(
    client, alice, settings, frozen
):
    assert password(client, "alice").status_code == 302
    assert settings.DEVICE_COOKIE_NAME not in client.cookies, "no cookie before the second factor"
    answer = client.post(reverse("admin:mfa_verify"), {"token": totp_code(confirmed_device(alice))}, REMOTE_ADDR=NAT)
    morsel = answer.cookies[settings.DEVICE_COOKIE_NAME]
    assert morsel["httponly"] and morsel["samesite"] == "Lax"
    assert int(morsel["max-age"]) == 180 * 24 * 3600
    assert bool(morsel["secure"]) == settings.DEVICE_COOKIE_SECURE
    assert "alice" not in morsel.value, "the cookie names its user by a keyed digest"
    # The cookie is bound to alice; signing in again on that browser keeps the device's identity.
    request = RequestFactory().get("/", HTTP_COOKIE=f"{settings.DEVICE_COOKIE_NAME}={morsel.value}")
    digest = lockout.device_of(request, "alice")
    assert digest and lockout.device_of(request, "bob") == ""
    sign_out(client, frozen)
    again = full_sign_in(client, alice)
    request = RequestFactory().get(
        "/", HTTP_COOKIE=f"{settings.DEVICE_COOKIE_NAME}={again.cookies[settings.DEVICE_COOKIE_NAME].value}"
    )
    assert lockout.device_of(request, "alice") == digest


def test_an_attacker_behind_the_nat_locks_alice_there_but_not_her_own_browser(alice, frozen):
    browser = Client()
    full_sign_in(browser, alice)
    sign_out(browser, frozen)
    attacker = Client()
    answers = fail(attacker, "alice", 5)
    assert answers[-1].status_code == 429
    assert password(attacker, "alice").status_code == 429, "the right password is refused without the cookie"
    lock = Lockout.active().get()
    assert (lock.username, lock.ip_address, lock.device) == ("alice", NAT, "")
    # Alice, with the cookie from her earlier sign-in on this browser, from the same address:
    full_sign_in(browser, alice)
    assert Lockout.active().count() == 1, "the attacker's lock on (alice, NAT) stays"
    attacker.logout()
    assert password(attacker, "alice").status_code == 429


def test_a_tampered_forged_or_other_users_cookie_is_ignored_and_counts_by_address(alice, bob, settings, frozen):
    bobs_browser = Client()
    full_sign_in(bobs_browser, bob)
    bobs_cookie = device_cookie(bobs_browser)
    attacker = Client()
    fail(attacker, "alice", 5)
    assert Lockout.active().filter(username="alice", ip_address=NAT, device="").exists()

    alices_browser = Client()
    full_sign_in(alices_browser, alice, ip=ELSEWHERE)
    genuine = device_cookie(alices_browser)
    tampered = genuine[:-3] + ("aaa" if not genuine.endswith("aaa") else "bbb")
    forged = lockout.signing.dumps({"u": "x", "d": "y"}, salt="not-the-salt")
    for value in (bobs_cookie, tampered, forged, "garbage"):
        other = Client()
        other.cookies[settings.DEVICE_COOKIE_NAME] = value
        assert password(other, "alice").status_code == 429, value
    # And a failure with such a cookie adds to the address's count, not to a device's.
    fresh = make_user("carol", roles=["operator"])
    confirmed_device(fresh)
    other = Client()
    other.cookies[settings.DEVICE_COOKIE_NAME] = bobs_cookie
    fail(other, "carol", 1)
    attempt = AccessAttempt.objects.get(username="carol")
    assert (attempt.ip_address, attempt.user_agent) == (NAT, lockout.ADDRESS_CLIENT)
    # The genuine cookie works from the NAT address too.
    sign_out(alices_browser, frozen)
    full_sign_in(alices_browser, alice)


def test_a_device_that_fails_five_times_locks_username_and_device_only(alice, settings, frozen):
    browser = Client()
    full_sign_in(browser, alice, ip=ELSEWHERE)
    sign_out(browser, frozen)
    answers = fail(browser, "alice", 5, ip=ELSEWHERE)
    assert [a.status_code for a in answers] == [200] * 4 + [429]
    assert password(browser, "alice", ip=ELSEWHERE).status_code == 429, "the device is locked, wherever it goes"
    assert password(browser, "alice", ip="203.0.113.200").status_code == 429
    lock = Lockout.active().get()
    assert lock.device and lock.ip_address == ELSEWHERE
    event = SecurityEvent.objects.get(event_type="account_locked")
    assert event.details["client"] == "device"
    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.user_agent == f"{lockout.DEVICE_MARK}{lock.device}"
    # Another browser of alice (no cookie) at that address is counted by address: not locked.
    assert password(Client(), "alice", ip=ELSEWHERE).status_code == 302


def test_device_lockouts_count_towards_blocking_their_address(alice, settings, frozen):
    settings.LOCKOUT_IP_BLOCK_AFTER = 2
    browser = Client()
    full_sign_in(browser, alice, ip="203.0.113.9")
    sign_out(browser, frozen)
    fail(browser, "alice", 5, ip=ELSEWHERE)  # locks (alice, device) from ELSEWHERE
    assert not IPListEntry.objects.exists()
    fail(Client(), "someone", 5, ip=ELSEWHERE)  # locks (someone, ELSEWHERE)
    block = IPListEntry.objects.get()
    assert block.network == f"{ELSEWHERE}/32" and block.automatic


def test_a_device_lockout_escalates_on_its_own_pair(alice, frozen):
    from datetime import timedelta

    browser = Client()
    full_sign_in(browser, alice, ip=ELSEWHERE)
    sign_out(browser, frozen)
    fail(Client(), "alice", 5, ip=ELSEWHERE)  # (alice, address) level 0
    fail(browser, "alice", 5, ip=ELSEWHERE)  # (alice, device): its own level 0
    locks = {lock.device != "": lock for lock in Lockout.objects.all()}
    assert locks[True].level == 0 and locks[False].level == 0
    frozen.shift(timedelta(minutes=16))
    fail(browser, "alice", 5, ip=ELSEWHERE)
    assert Lockout.objects.filter(device=locks[True].device).latest("locked_at").level == 1


def test_wrong_codes_from_a_browser_with_its_cookie_count_against_the_device(alice, frozen):
    browser = Client()
    full_sign_in(browser, alice)
    sign_out(browser, frozen)
    device = confirmed_device(alice)
    near = {totp_code(device, offset_steps=s) for s in range(-3, 4)}
    wrong = next(c for c in ("000000", "111111", "123456") if c not in near)
    assert password(browser, "alice").status_code == 302
    browser.post(reverse("admin:mfa_verify"), {"token": wrong}, REMOTE_ADDR=NAT)
    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.user_agent.startswith(lockout.DEVICE_MARK) and attempt.failures_since_start == 1
    # The address's count for alice is untouched: a browser without the cookie still has all five tries.
    assert not AccessAttempt.objects.filter(username="alice", user_agent=lockout.ADDRESS_CLIENT).exists()
