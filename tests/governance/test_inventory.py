"""Every field of every installed model has a data category in apps/governance/inventory.py."""

import pytest
from django.apps import apps

from apps.governance.constants import Category
from apps.governance.inventory import FIELDS


def test_every_installed_model_field_is_classified():
    missing = [
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.name not in FIELDS.get(model._meta.label, {})
    ]
    assert not missing, f"classify these fields in apps/governance/inventory.py: {missing}"


def test_the_inventory_names_no_field_that_does_not_exist():
    stale = []
    for label, fields in FIELDS.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue  # an app not installed in this deployment
        names = {f.name for f in model._meta.concrete_fields}
        stale += [f"{label}.{name}" for name in fields if name not in names]
        assert all(isinstance(c, Category) for c in fields.values())
    assert not stale


@pytest.mark.django_db
def test_the_inventory_endpoint_lists_categories_with_retention(role_users, client):
    from tests.conftest import verified_client

    api = verified_client(client, role_users["auditor"])
    body = api.get("/api/enterprise/governance/inventory").json()
    user = next(m for m in body["models"] if m["model"] == "accounts.User")
    assert user["fields"]["email"] == "PERSONAL" and user["fields"]["password"] == "SENSITIVE"
    attempts = next(m for m in body["models"] if m["model"] == "erp.ErpSyncAttempt")
    assert attempts["retention"]["data_class"] == "erp_sync_attempts"
    assert attempts["retention"]["retention_days"] == 365
    assert set(body["categories"]) == {"PERSONAL", "SENSITIVE", "OPERATIONAL", "AUDIT"}
    assert client.logout() is None
    analyst = verified_client(client, role_users["analyst"])
    assert analyst.get("/api/enterprise/governance/inventory").status_code == 403
