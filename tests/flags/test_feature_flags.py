"""Feature flags: the default flags, deterministic percentage buckets, users and roles targeting, the
seed's endpoints with their capabilities and 422s, audited changes, and `bulk_operations` gating bulk delete."""

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.flags import services
from apps.flags.models import FeatureFlag, bucket
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

BASE = "/api/enterprise/features"


def send(client, method, url, body=None):
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def test_the_default_flags_exist(role_users, superuser):
    states = dict(FeatureFlag.objects.values_list("name", "state"))
    assert states == {
        "enterprise_audit": "enabled",
        "enterprise_security": "enabled",
        "data_governance": "enabled",
        "advanced_analytics": "disabled",
        "bulk_operations": "enabled",
    }
    assert services.is_enabled("bulk_operations", role_users["admin"])
    assert services.is_enabled("bulk_operations", superuser)
    assert not services.is_enabled("bulk_operations", role_users["operator"])
    assert services.is_enabled("enterprise_audit", role_users["operator"])
    assert not services.is_enabled("advanced_analytics", superuser)
    assert not services.is_enabled("no_such_flag", superuser)


def test_percentage_buckets_are_deterministic_and_roughly_the_percentage(superuser):
    users = [make_user(f"u{i}", roles=["operator"]) for i in range(200)]
    services.create({"key": "new_dashboard", "state": "enabled", "percentage": 20}, actor=superuser)
    first = [services.is_enabled("new_dashboard", u) for u in users]
    assert first == [services.is_enabled("new_dashboard", u) for u in users], "same answer every time"
    assert first == [bucket("new_dashboard", u.pk) < 20 for u in users]
    assert 20 <= sum(first) <= 60
    # Another flag buckets the same users differently.
    assert [bucket("other", u.pk) < 20 for u in users] != first


def test_users_and_roles_targeting(superuser, role_users):
    services.create(
        {"key": "beta_export", "state": "enabled", "allowed_users": ["operator_a"], "allowed_roles": ["analyst"]},
        actor=superuser,
    )
    assert services.is_enabled("beta_export", role_users["operator"])
    assert services.is_enabled("beta_export", role_users["analyst"])
    assert not services.is_enabled("beta_export", role_users["auditor"])


def test_the_endpoints_create_patch_enable_disable_delete_audited(client, superuser, role_users):
    verified_client(client, superuser)
    created = send(
        client, "post", BASE, {"key": "new_dashboard", "name": "Yeni pano", "state": "enabled", "percentage": 20}
    )
    assert created.status_code == 201, created.content
    assert created.json()["percentage"] == 20.0
    assert [f["key"] for f in client.get(BASE).json()] == sorted(
        [
            "new_dashboard",
            "enterprise_audit",
            "enterprise_security",
            "data_governance",
            "advanced_analytics",
            "bulk_operations",
        ]
    )
    patched = send(client, "patch", f"{BASE}/new_dashboard", {"percentage": 50, "allowed_roles": ["admin"]})
    assert patched.status_code == 200 and patched.json()["allowed_roles"] == ["admin"]
    assert send(client, "post", f"{BASE}/new_dashboard/disable").json()["state"] == "disabled"
    assert client.get(f"{BASE}/new_dashboard").json() == {"key": "new_dashboard", "enabled": False}
    assert send(client, "post", f"{BASE}/new_dashboard/enable").json()["state"] == "enabled"
    assert client.get(f"{BASE}/new_dashboard").json()["enabled"] is True, "superusers are targeted"
    assert client.delete(f"{BASE}/new_dashboard").status_code == 204
    assert client.get(f"{BASE}/new_dashboard").status_code == 404
    actions = list(AuditLog.objects.filter(action__startswith="flags.").order_by("pk").values_list("action", flat=True))
    assert actions == ["flags.created", "flags.updated", "flags.disabled", "flags.enabled", "flags.deleted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "Bad Key", "state": "enabled"}, "key"),
        ({"key": "enterprise_audit"}, "key"),
        ({"key": "x", "state": "maybe"}, "state"),
        ({"key": "x", "percentage": 100}, "percentage"),
        ({"key": "x", "allowed_roles": ["manager"]}, "allowed_roles"),
        ({"key": "x", "allowed_users": ["nobody"]}, "allowed_users"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, superuser, body, field):
    verified_client(client, superuser)
    response = send(client, "post", BASE, body)
    assert response.status_code == 422 and list(response.json()["errors"]) == [field]


def test_capabilities(client, role_users):
    verified_client(client, role_users["operator"])
    assert client.get(f"{BASE}/enabled").json()["enabled"] == [
        "data_governance",
        "enterprise_audit",
        "enterprise_security",
    ]
    assert client.get(f"{BASE}/enterprise_audit").json()["enabled"] is True
    assert client.get(BASE).status_code == 403
    client.logout()
    verified_client(client, role_users["admin"])
    assert client.get(BASE).status_code == 200
    assert send(client, "post", BASE, {"key": "mine"}).status_code == 403
    assert send(client, "patch", f"{BASE}/bulk_operations", {"percentage": 5}).status_code == 403
    assert send(client, "post", f"{BASE}/bulk_operations/disable").status_code == 403
    assert client.delete(f"{BASE}/bulk_operations").status_code == 403


def test_bulk_operations_gates_the_admins_bulk_delete(client, superuser, role_users):
    url = reverse("admin:catalog_machine_changelist")
    verified_client(client, role_users["admin"])
    actions = client.get(url).context["cl"].model_admin.get_actions(client.get(url).wsgi_request)
    assert "delete_selected" in actions
    services.set_state(FeatureFlag.objects.get(name="bulk_operations"), "disabled", actor=superuser)
    response = client.get(url)
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)
