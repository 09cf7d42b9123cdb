"""The /api/enterprise/security endpoints: locked accounts and unlocking, events and summary, sessions; each
endpoint's capability (403 for the wrong role), tenant admins see only their tenants' users; the counters."""

import json

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from apps.audit.models import AuditLog
from apps.core import incident_lock
from apps.security import events, lockout, sessions
from apps.security.models import Lockout, SecurityEvent, UserSession
from tests.conftest import PASSWORD, make_user, verified_client

pytestmark = pytest.mark.django_db

BASE = "/api/enterprise/security"


@pytest.fixture(autouse=True)
def _loose_throttle(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "10000/min",
            "login_user": "10000/min",
        },
    }


@pytest.fixture
def other_tenant_user(tenant_b):
    return make_user("baska", roles=["operator"], tenants=[tenant_b])


def lock(username, ip="203.0.113.5"):
    client = Client()
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": username, "password": "nope"}, REMOTE_ADDR=ip)


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_locked_accounts_and_unlock_for_a_tenant_admin_only_their_users(client, role_users, other_tenant_user):
    lock(role_users["operator"].username)
    lock(other_tenant_user.username)
    lock("ghost")
    verified_client(client, role_users["admin"])
    listed = client.get(f"{BASE}/locked-accounts").json()
    assert [row["username"] for row in listed] == ["operator_a"]
    assert listed[0]["client"] == "address", "keyed by the address: that browser had no device cookie"
    assert post(client, f"{BASE}/unlock-account", {"username": "baska"}).status_code == 404
    assert post(client, f"{BASE}/unlock-account", {"username": "ghost"}).status_code == 404
    unlocked = post(client, f"{BASE}/unlock-account", {"username": "operator_a"})
    assert unlocked.status_code == 200 and unlocked.json()["lifted"] >= 1
    assert not Lockout.active().filter(username="operator_a").exists()
    entry = AuditLog.objects.get(action="security.account_unlocked")
    assert entry.actor_id == str(role_users["admin"].pk) and entry.payload["username"] == "operator_a"


def test_a_superuser_sees_every_lockout_and_clears_unknown_names(client, superuser):
    lock("ghost")
    verified_client(client, superuser)
    assert [row["username"] for row in client.get(f"{BASE}/locked-accounts").json()] == ["ghost"]
    assert post(client, f"{BASE}/unlock-account", {"username": "ghost"}).json()["lifted"] == 1


def test_unlocking_is_an_emergency_operation_under_the_incident_lock(client, superuser):
    lock("ghost")
    incident_lock.set_lock(True, reason="credential stuffing", source="command")
    verified_client(client, superuser)
    assert post(client, f"{BASE}/unlock-account", {"username": "ghost"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/locked-accounts"),
        ("post", "/unlock-account"),
        ("get", "/events"),
        ("get", "/summary"),
        ("get", "/ip-lists"),
        ("post", "/ip-list"),
        ("delete", "/ip-list/10.0.0.1"),
        ("get", "/sessions/{uid}"),
        ("delete", "/sessions/{uid}"),
        ("post", "/break-glass"),
    ],
)
def test_an_operator_is_refused_every_endpoint(client, role_users, method, path):
    operator = role_users["operator"]
    verified_client(client, operator)
    url = BASE + path.format(uid=operator.pk)
    if method == "get":
        response = client.get(url)
    else:
        response = getattr(client, method)(url, "{}", content_type="application/json")
    assert response.status_code == 403, url
    assert response["Content-Type"] == "application/problem+json"


def test_an_anonymous_caller_is_refused(client):
    assert client.get(f"{BASE}/events").status_code in (401, 403)


def test_events_filter_by_severity_limit_and_since_and_are_scoped(client, role_users, other_tenant_user):
    events.record_event("account_locked", "high", username="operator_a")
    events.record_event("account_locked", "critical", username="baska")
    events.record_event("ip_refused", "medium", client_ip="192.0.2.1")
    verified_client(client, role_users["auditor"])
    # The auditor is not a tenant admin but holds no "all tenants" either: only users they see.
    admin = Client()
    verified_client(admin, role_users["admin"])
    seen = admin.get(f"{BASE}/events?severity=high").json()
    assert [(e["event_type"], e["username"]) for e in seen] == [("account_locked", "operator_a")]
    root = Client()
    verified_client(root, make_user("kok", superuser=True))
    assert len(root.get(f"{BASE}/events?severity=high").json()) == 2
    assert len(root.get(f"{BASE}/events?limit=1").json()) == 1
    assert root.get(f"{BASE}/events?since=2999-01-01T00:00:00Z").json() == []
    bad = root.get(f"{BASE}/events?severity=urgent&limit=0")
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"severity", "limit"}
    summary = root.get(f"{BASE}/summary?hours=1").json()
    assert summary["events"]["account_locked"] == {"high": 1, "critical": 1}
    assert summary["locked_accounts"] == 0 and summary["active_blocks"] == 0


def test_every_event_is_an_audit_entry_with_severity_ip_and_request_id(client, superuser):
    lock("ghost", ip="198.51.100.9")
    event = SecurityEvent.objects.get(event_type="account_locked")
    entry = AuditLog.objects.get(action="security.account_locked")
    assert entry.object_id == str(event.pk)
    assert entry.payload["severity"] == "high" and entry.payload["client_ip"] == "198.51.100.9"
    assert entry.payload["request_id"] == event.request_id != ""


def test_the_events_counter_counts_by_type_and_severity():
    from apps.security.metrics import SECURITY_EVENTS

    before = SECURITY_EVENTS.labels("ip_refused", "medium")._value.get()
    events.record_event("ip_refused", "medium", client_ip="192.0.2.1")
    assert SECURITY_EVENTS.labels("ip_refused", "medium")._value.get() == before + 1
    with pytest.raises(ValueError):
        events.record_event("made_up", "medium")


# ---------------------------------------------------------------- sessions
def sign_in(user, ip="192.0.2.10", agent="Firefox"):
    from django_otp import DEVICE_ID_SESSION_KEY

    from tests.conftest import confirmed_device

    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = confirmed_device(user).persistent_id
    session.save()
    client.get("/health/live")  # the first request notes the address and the browser
    return client


def test_sessions_are_listed_and_force_logout_ends_them_and_the_tokens(role_users):
    operator = role_users["operator"]
    first, second = sign_in(operator, agent="Firefox"), sign_in(operator, agent="Chromium")
    AuthToken.objects.create(user=operator)
    admin = sign_in(role_users["admin"])
    listed = admin.get(f"{BASE}/sessions/{operator.pk}").json()
    assert sorted(s["user_agent"] for s in listed["sessions"]) == ["Chromium", "Firefox"]
    assert len(listed["tokens"]) == 1 and listed["sessions"][0]["ip_address"] == "192.0.2.10"
    ended = admin.delete(f"{BASE}/sessions/{operator.pk}")
    assert ended.json() == {"sessions": 2, "tokens": 1}
    for client in (first, second):
        assert client.get(reverse("admin:index")).status_code == 302
        assert SESSION_KEY not in client.session
    assert not AuthToken.objects.filter(user=operator).exists()
    assert AuditLog.objects.filter(action="security.session_terminated").exists()


def test_a_tenant_admin_cannot_see_or_end_another_tenants_sessions(role_users, other_tenant_user):
    admin = sign_in(role_users["admin"])
    assert admin.get(f"{BASE}/sessions/{other_tenant_user.pk}").status_code == 404
    assert admin.delete(f"{BASE}/sessions/{other_tenant_user.pk}").status_code == 404


def test_a_user_ends_their_own_other_sessions_and_keeps_this_one(role_users):
    admin_user = role_users["admin"]
    here, elsewhere = sign_in(admin_user), sign_in(admin_user, agent="Phone")
    assert here.delete(f"{BASE}/sessions/{admin_user.pk}").json()["sessions"] == 1
    assert here.get(reverse("admin:index")).status_code == 200
    assert elsewhere.get(reverse("admin:index")).status_code == 302


def test_signing_in_beyond_the_cap_ends_the_oldest_session(role_users, settings):
    settings.MAX_CONCURRENT_SESSIONS = 2
    operator = role_users["operator"]
    oldest = sign_in(operator, agent="1")
    sign_in(operator, agent="2")
    sign_in(operator, agent="3")
    assert sorted(s.user_agent for s in sessions.live_sessions(operator)) == ["2", "3"]
    assert oldest.get(reverse("admin:index")).status_code == 302
    assert UserSession.objects.get(user_agent="1").end_reason == "concurrent_limit"


def test_a_per_role_cap(role_users, settings):
    settings.MAX_CONCURRENT_SESSIONS_PER_ROLE = {"operator": 1}
    operator = role_users["operator"]
    sign_in(operator, agent="1")
    sign_in(operator, agent="2")
    assert [s.user_agent for s in sessions.live_sessions(operator)] == ["2"]


def test_password_change_role_change_and_device_removal_end_sessions(role_users):
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    operator = role_users["operator"]
    client = sign_in(operator)
    operator.set_password(PASSWORD + "-new")
    operator.save()
    assert client.get(reverse("admin:index")).status_code == 302
    assert UserSession.objects.filter(end_reason="password_changed").exists()

    client = sign_in(operator)
    operator.groups.add(Group.objects.get(name="analyst"))
    assert client.get(reverse("admin:index")).status_code == 302
    assert UserSession.objects.filter(end_reason="role_changed").exists()

    client = sign_in(operator)
    TOTPDevice.objects.filter(user=operator).delete()
    assert client.get(reverse("admin:index")).status_code == 302
    assert UserSession.objects.filter(end_reason="mfa_device_removed").exists()


def test_the_session_list_is_in_the_admin(role_users, superuser):
    sign_in(role_users["operator"], agent="Tezgah-Tablet")
    root = sign_in(superuser)
    page = root.get(reverse("admin:security_usersession_changelist"))
    assert page.status_code == 200 and "Tezgah-Tablet" in page.content.decode()


def test_lockout_module_never_refuses_an_unlocked_pair(rf):
    request = rf.post("/admin/login/", REMOTE_ADDR="192.0.2.1")
    request.client_ip = "192.0.2.1"
    assert not lockout.is_locked(request, "anyone")
