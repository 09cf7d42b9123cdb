"""Token issue and revoke, inbound 401/403 refusals, throttled sign-ins and their flood rule: one entry per
(address, reason) per minute, the rest counted into the next entry (issue 11)."""

import time

import pytest
import time_machine
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.audit import services
from apps.audit.models import AuditLog
from tests.conftest import verified_client
from tests.erp.inbound_helpers import profile, send  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def entries(action):
    return list(AuditLog.objects.filter(action=action).order_by("id"))


@pytest.fixture
def frozen():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


# ---------------------------------------------------------------- API tokens
def test_issuing_and_revoking_a_token_are_audited_without_the_token(role_users):
    user = role_users["operator"]
    issued = verified_client(APIClient(), user).post("/api/v1/auth/token/").json()["token"]
    key = AuthToken.objects.get(user=user).token_key
    holder = APIClient()
    holder.credentials(HTTP_AUTHORIZATION=f"Token {issued}")

    assert holder.post("/api/v1/auth/token/revoke/").status_code == 204

    [issue] = entries("auth.token_issued")
    [revoke] = entries("auth.token_revoked")
    for entry in (issue, revoke):
        assert (entry.actor_type, entry.actor_id, entry.object_id) == ("user", str(user.pk), key)
        assert issued not in str(entry.payload)
    assert issue.payload["expiry"]


def test_revoking_all_tokens_is_audited_with_their_keys(role_users):
    user = role_users["operator"]
    session = verified_client(APIClient(), user)
    tokens = [session.post("/api/v1/auth/token/").json()["token"] for _ in range(2)]
    keys = sorted(AuthToken.objects.filter(user=user).values_list("token_key", flat=True))
    holder = APIClient()
    holder.credentials(HTTP_AUTHORIZATION=f"Token {tokens[0]}")

    assert holder.post("/api/v1/auth/token/revoke-all/").status_code == 204

    [entry] = entries("auth.tokens_revoked_all")
    assert entry.actor_id == str(user.pk) and entry.payload == {"token_keys": keys, "count": 2}


def test_a_refused_token_request_issues_nothing_and_records_no_issue(client, role_users):
    client.force_login(role_users["operator"])  # password only: no token

    assert client.post("/api/v1/auth/token/").status_code == 403
    assert entries("auth.token_issued") == []


# ---------------------------------------------------------------- ERP inbound refusals
BODY = {"job_id": "ERP-1", "status": "running", "progress": 10}


@pytest.mark.usefixtures("profile")
def test_an_inbound_401_and_403_are_audited_with_address_and_reason(client):
    assert send(client, BODY, token="wrong-token").status_code == 401
    assert send(client, BODY, ip="203.0.113.9").status_code == 403

    refusals = entries("erp.inbound.refused")
    assert [(e.payload["status"], e.payload["reason"], e.client_ip) for e in refusals] == [
        (401, "authentication-failed", "127.0.0.1"),
        (403, "ip-not-allowed", "203.0.113.9"),
    ]
    assert all(e.actor_type == "anonymous" and e.payload["suppressed_before"] == 0 for e in refusals)


@pytest.mark.usefixtures("profile")
def test_a_flood_of_inbound_refusals_writes_one_entry_per_address_and_reason_per_minute(client, frozen):
    for _ in range(25):
        assert send(client, BODY, token="wrong-token").status_code == 401
    send(client, BODY, token="wrong-token", ip="127.0.0.1", signature="x")  # same address and reason
    assert send(client, BODY, ip="203.0.113.9").status_code == 403  # another reason: its own entry

    assert len(entries("erp.inbound.refused")) == 2

    frozen.shift(61)
    assert send(client, BODY, token="wrong-token").status_code == 401

    latest = entries("erp.inbound.refused")[-1]
    assert latest.payload["reason"] == "authentication-failed"
    assert latest.payload["suppressed_before"] == 25  # 26 refused in the first minute, one of them recorded


@pytest.mark.usefixtures("profile")
def test_a_refused_body_is_not_a_refusal_entry(client):
    assert send(client, b"not json").status_code == 422

    assert entries("erp.inbound.refused") == []


# ---------------------------------------------------------------- throttled sign-ins
@pytest.fixture
def login_rate(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_throttled_sign_ins_write_one_entry_per_address_per_minute_and_count_the_rest(client, login_rate, frozen):
    login = reverse("admin:login")
    codes = [
        client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1").status_code
        for _ in range(12)
    ]
    assert codes.count(429) == 10
    client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.2")
    client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.2")
    assert client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.2").status_code == 429

    throttled = entries("auth.sign_in_throttled")
    assert [(e.client_ip, e.payload["step"]) for e in throttled] == [
        ("198.51.100.1", "login"),
        ("198.51.100.2", "login"),
    ]

    frozen.shift(61)
    client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1")
    client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1")
    assert client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1").status_code == 429

    latest = entries("auth.sign_in_throttled")[-1]
    assert latest.client_ip == "198.51.100.1" and latest.payload["suppressed_before"] == 9


# ---------------------------------------------------------------- the rule itself
def test_record_once_per_window_records_the_first_and_counts_the_rest(frozen):
    first = services.record_once_per_window(None, "x.refused", None, {"a": 1}, key="k")
    assert [services.record_once_per_window(None, "x.refused", None, {"a": 1}, key="k") for _ in range(3)] == [None] * 3
    assert services.record_once_per_window(None, "x.refused", None, {}, key="other") is not None

    frozen.shift(services.REFUSAL_WINDOW_SECONDS + 1)
    later = services.record_once_per_window(None, "x.refused", None, {"a": 1}, key="k")

    assert first.payload == {"a": 1, "window_seconds": 60, "suppressed_before": 0}
    assert later.payload["suppressed_before"] == 3
