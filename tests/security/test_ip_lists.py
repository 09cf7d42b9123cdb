"""IP allow/block lists: CIDR v4/v6, scopes, expiry at once, whitelist mode, the 422s, one cache read per
request, ADMIN_IP_ALLOWLIST as the admin scope's fixed allow entry, and break-glass with a second approver."""

import json
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.security import breakglass, iplists
from apps.security.models import IPListEntry
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

ADD = "/api/enterprise/security/ip-list"
LISTS = "/api/enterprise/security/ip-lists"


def post(client, url, body, **extra):
    return client.post(url, json.dumps(body), content_type="application/json", **extra)


@pytest.mark.parametrize(
    ("network", "inside", "outside"),
    [
        ("10.20.0.0/16", "10.20.255.1", "10.21.0.1"),
        ("192.0.2.5", "192.0.2.5", "192.0.2.6"),
        ("2001:db8:abcd::/48", "2001:db8:abcd:12::1", "2001:db8:abce::1"),
        ("2001:db8::7", "2001:db8::7", "2001:db8::8"),
    ],
)
def test_cidr_v4_and_v6_block_entries_match_their_addresses_only(network, inside, outside, superuser):
    iplists.add_entry(network=network, list_type="blacklist", actor=superuser)
    assert iplists.decide(inside, "api") == (False, False)
    assert iplists.decide(outside, "api") == (True, False)
    assert iplists.decide("not-an-ip", "api")[0] is True


def test_scopes_apply_to_their_paths_only(client, superuser):
    iplists.add_entry(network="203.0.113.0/24", list_type="blacklist", scope="api", actor=superuser)
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get(reverse("admin:login"), REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.get("/health/live", REMOTE_ADDR="203.0.113.9").status_code == 200
    refused = client.get("/api/v1/jobs/", REMOTE_ADDR="203.0.113.9")
    assert refused["Content-Type"] == "application/problem+json"
    assert json.loads(refused.content)["type"].endswith("ip-blocked")


def test_an_expired_entry_stops_matching_at_once_and_beat_purges_it(superuser):
    iplists.add_entry(network="198.51.100.1", list_type="blacklist", expires_hours=1, actor=superuser)
    assert iplists.decide("198.51.100.1", "all")[0] is False
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert iplists.decide("198.51.100.1", "all")[0] is True, "the cached snapshot knows the expiry"
        from apps.security.tasks import purge_expired_ip_entries

        assert purge_expired_ip_entries() == 1
    assert not IPListEntry.objects.exists()


def test_whitelist_mode_lets_only_allowed_addresses_through(client, superuser, settings):
    settings.IP_FILTER_MODE = "whitelist"
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.1").status_code != 403, "no allow entry: unrestricted"
    iplists.add_entry(network="192.0.2.0/28", list_type="whitelist", scope="api", actor=superuser)
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.1").status_code != 403
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.99").status_code == 403
    assert client.get(reverse("admin:login"), REMOTE_ADDR="192.0.2.99").status_code == 200, "other scope"


def test_an_allow_entry_wins_over_a_block_entry(superuser):
    iplists.add_entry(network="10.0.0.0/8", list_type="blacklist", actor=superuser)
    iplists.add_entry(network="10.1.2.3", list_type="whitelist", actor=superuser)
    assert iplists.decide("10.1.2.3", "admin") == (True, True)
    assert iplists.decide("10.1.2.4", "admin") == (False, False)


def test_a_request_reads_the_lists_with_one_cache_read(client, superuser):
    iplists.add_entry(network="192.0.2.77", list_type="blacklist", actor=superuser)
    client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.1")  # warms the cache
    real = iplists.cache
    with mock.patch.object(iplists, "cache", wraps=real) as spy:
        client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.1")
        client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.2")
    assert spy.get.call_count == 2 and spy.set.call_count == 0


def test_a_change_is_seen_by_the_next_request(client, superuser):
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.50").status_code != 403
    iplists.add_entry(network="192.0.2.50", list_type="blacklist", actor=superuser)
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.50").status_code == 403
    iplists.remove_entries(network="192.0.2.50", actor=superuser)
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="192.0.2.50").status_code != 403


# ---------------------------------------------------------------- the API
def test_a_superuser_adds_lists_and_removes_entries_audited(client, superuser):
    verified_client(client, superuser)
    created = post(client, ADD, {"ip_address": "2001:DB8::/32", "list_type": "blacklist", "reason": "tarama",
                                 "expires_hours": 720, "scope": "erp_inbound"})  # fmt: skip
    assert created.status_code == 201, created.content
    assert created.json()["ip_address"] == "2001:db8::/32"
    assert post(client, ADD, {"ip_address": "10.0.0.0/8", "list_type": "whitelist"}).status_code == 201
    body = client.get(LISTS).json()
    assert [e["ip_address"] for e in body["blacklist"]] == ["2001:db8::/32"]
    assert [e["ip_address"] for e in body["whitelist"]] == ["10.0.0.0/8"]
    assert AuditLog.objects.filter(action="security.ip_list_changed").count() == 2
    # A CIDR in the path: its slash as is, or %2F.
    assert client.delete("/api/enterprise/security/ip-list/10.0.0.0/8?list_type=whitelist").status_code == 200
    assert client.delete("/api/enterprise/security/ip-list/2001:db8::%2F32").status_code == 200
    assert not IPListEntry.objects.exists()
    assert client.delete("/api/enterprise/security/ip-list/10.0.0.0/8").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ip_address": "10.0.0.300", "list_type": "blacklist"}, "ip_address"),
        ({"ip_address": "10.0.0.0/33", "list_type": "blacklist"}, "ip_address"),
        ({"ip_address": "gggg::1", "list_type": "blacklist"}, "ip_address"),
        ({"ip_address": "10.0.0.1", "list_type": "greylist"}, "list_type"),
        ({"ip_address": "10.0.0.1", "list_type": "blacklist", "expires_hours": 0}, "expires_hours"),
        ({"ip_address": "10.0.0.1", "list_type": "blacklist", "scope": "moon"}, "scope"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, superuser, body, field):
    verified_client(client, superuser)
    response = post(client, ADD, body)
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]


def test_a_bad_address_in_the_delete_path_is_422(client, superuser):
    verified_client(client, superuser)
    response = client.delete("/api/enterprise/security/ip-list/999.1.1.1")
    assert response.status_code == 422 and "ip" in response.json()["errors"]


def test_tenant_admins_read_the_lists_but_may_not_change_them(client, role_users):
    verified_client(client, role_users["admin"])
    assert client.get(LISTS).status_code == 200
    assert post(client, ADD, {"ip_address": "10.0.0.1", "list_type": "blacklist"}).status_code == 403
    assert client.delete("/api/enterprise/security/ip-list/10.0.0.1").status_code == 403
    client.logout()
    verified_client(client, role_users["operator"])
    assert client.get(LISTS).status_code == 403


# ---------------------------------------------------------------- ADMIN_IP_ALLOWLIST and break-glass
def test_an_allow_entry_of_the_admin_scope_extends_admin_ip_allowlist(client, settings, superuser):
    settings.ADMIN_IP_ALLOWLIST = ["10.9.0.0/16"]
    assert client.get(reverse("admin:login"), REMOTE_ADDR="192.0.2.8").status_code == 403
    iplists.add_entry(network="192.0.2.8", list_type="whitelist", scope="admin", actor=superuser)
    assert client.get(reverse("admin:login"), REMOTE_ADDR="192.0.2.8").status_code == 200
    assert client.get(reverse("admin:login"), REMOTE_ADDR="10.9.1.1").status_code == 200


@pytest.fixture
def admins(db):
    return make_user("kok1", superuser=True), make_user("kok2", superuser=True), make_user("saha", superuser=True)


def test_break_glass_needs_a_second_approver_and_expires(client, settings, admins):
    settings.ADMIN_IP_ALLOWLIST = ["10.9.0.0/16"]
    first, second, field_admin = admins
    grant = breakglass.request_access(user=field_admin, actor=first, reason="VPN çöktü", minutes=30)
    verified_client(client, field_admin)
    outside = {"REMOTE_ADDR": "192.0.2.44"}
    assert client.get(reverse("admin:index"), **outside).status_code == 403, "requested, not approved"
    with pytest.raises(Exception):
        breakglass.approve(grant, approver=first)
    with pytest.raises(Exception):
        breakglass.approve(grant, approver=field_admin)
    breakglass.approve(grant, approver=second)
    assert client.get(reverse("admin:index"), **outside).status_code == 200
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"security.break_glass_requested", "security.break_glass_approved", "security.break_glass_used"} <= actions
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert client.get(reverse("admin:index"), **outside).status_code == 403, "expired by itself"


def test_break_glass_through_the_api(client, settings, admins):
    first, second, field_admin = admins
    verified_client(client, first)
    made = post(
        client, "/api/enterprise/security/break-glass", {"user_id": field_admin.pk, "reason": "VPN", "minutes": 15}
    )
    assert made.status_code == 201, made.content
    too_long = post(
        client, "/api/enterprise/security/break-glass", {"user_id": field_admin.pk, "reason": "x", "minutes": 9999}
    )
    assert too_long.status_code == 422 and "minutes" in too_long.json()["errors"]
    approve = f"/api/enterprise/security/break-glass/{made.json()['id']}/approve"
    assert client.post(approve).status_code == 403, "not by the requester"
    client.logout()
    verified_client(client, second)
    assert client.post(approve).json()["approved_by"] == second.pk


def test_tenant_admins_may_not_use_break_glass(client, role_users):
    verified_client(client, role_users["admin"])
    response = post(
        client, "/api/enterprise/security/break-glass", {"user_id": role_users["admin"].pk, "reason": "x", "minutes": 5}
    )
    assert response.status_code == 403
