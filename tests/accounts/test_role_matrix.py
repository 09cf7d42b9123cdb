"""Every role x resource: allowed, 403, or invisible (another tenant's rows), written out by hand.

The tables below are derived from apps/accounts/capabilities.py and docs/roles.md. They are not computed
from the matrix on purpose: when the matrix drifts, these tests fail and somebody decides which is right.
"""

import re
from io import StringIO

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from apps.accounts.capabilities import ADMIN, ANALYST, AUDITOR, OPERATOR, ROLE_CAPABILITIES, ROLES
from apps.accounts.models import Tenant, User
from apps.accounts.selectors import scope_to_tenants, tenants_for, users_visible_to
from apps.billing.models import Invoice, License
from apps.catalog.models import Machine, Material, ModelType, Post, Template
from apps.jobs.models import Job, JobStatusChange
from apps.jobs.selectors import jobs_visible_to
from tests import factories
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

NO_ROLE = "no role"  # a staff user with MFA and tenant A, but in no role group
COLUMNS = (ADMIN, ANALYST, OPERATOR, AUDITOR, NO_ROLE)

OK = "allowed"
DENY = "403"
HIDDEN = "invisible"
OFFERED = "offered"
ABSENT = "not offered"

# ---------------------------------------------------------------- the expected matrix, by hand
# Opening the changelist (and a tenant-A row's change page).
CHANGELIST = {
    #            admin   analyst operator auditor no role
    "user":     (OK,     DENY,   DENY,    OK,     DENY),
    "tenant":   (OK,     OK,     OK,      OK,     DENY),
    "license":  (OK,     DENY,   DENY,    OK,     DENY),
    "invoice":  (OK,     DENY,   DENY,    OK,     DENY),
    "machine":  (OK,     OK,     OK,      OK,     DENY),
    "post":     (OK,     OK,     OK,      OK,     DENY),
    "material": (OK,     OK,     OK,      OK,     DENY),
    "template": (OK,     OK,     OK,      OK,     DENY),
    "modeltype": (OK,    OK,     OK,      OK,     DENY),
    "job":      (OK,     OK,     OK,      OK,     DENY),
}  # fmt: skip

# The add page. Tenants are created by superusers only.
ADD_PAGE = {
    #            admin   analyst operator auditor no role
    "user":     (OK,     DENY,   DENY,    DENY,   DENY),
    "tenant":   (DENY,   DENY,   DENY,    DENY,   DENY),
    "license":  (OK,     DENY,   DENY,    DENY,   DENY),
    "invoice":  (OK,     DENY,   DENY,    DENY,   DENY),
    "machine":  (OK,     DENY,   OK,      DENY,   DENY),
    "post":     (OK,     DENY,   OK,      DENY,   DENY),
    "material": (OK,     DENY,   OK,      DENY,   DENY),
    "template": (OK,     DENY,   OK,      DENY,   DENY),
    "modeltype": (OK,    DENY,   OK,      DENY,   DENY),
    "job":      (OK,     DENY,   OK,      DENY,   DENY),
}  # fmt: skip

# A row of tenant B (not granted to anyone here): absent from the list, its change page "doesn't exist".
OTHER_TENANT_ROW = {
    #            admin   analyst operator auditor no role
    "user":     (HIDDEN, DENY,   DENY,    HIDDEN, DENY),
    "tenant":   (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "license":  (HIDDEN, DENY,   DENY,    HIDDEN, DENY),
    "invoice":  (HIDDEN, DENY,   DENY,    HIDDEN, DENY),
    "machine":  (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "post":     (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "material": (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "template": (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "modeltype": (HIDDEN, HIDDEN, HIDDEN, HIDDEN, DENY),
    "job":      (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
}  # fmt: skip

# Bulk actions on the changelist (DENY: the changelist itself is forbidden).
ACTIONS = {
    #                    admin    analyst operator auditor no role
    "cancel_selected": (OFFERED, ABSENT, OFFERED, ABSENT, DENY),
    "extend_selected": (OFFERED, DENY,   DENY,    ABSENT, DENY),
}  # fmt: skip

# The jobs API on a tenant-A job, and on a tenant-B job (HIDDEN: absent from the list, 404 for one job).
API = {
    #          admin   analyst operator auditor no role
    "list":   (OK,     OK,     OK,      OK,     DENY),
    "detail": (OK,     OK,     OK,      OK,     DENY),
    "status": (OK,     DENY,   OK,      DENY,   DENY),
}  # fmt: skip
API_OTHER_TENANT = {
    #          admin   analyst operator auditor no role
    "list":   (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "detail": (HIDDEN, HIDDEN, HIDDEN,  HIDDEN, DENY),
    "status": (HIDDEN, DENY,   HIDDEN,  DENY,   DENY),
}  # fmt: skip

MODELS = {
    "user": User,
    "tenant": Tenant,
    "license": License,
    "invoice": Invoice,
    "machine": Machine,
    "post": Post,
    "material": Material,
    "template": Template,
    "modeltype": ModelType,
    "job": Job,
}


def cells(table):
    return [
        pytest.param(resource, role, outcome, id=f"{resource}-{role.replace(' ', '_')}")
        for resource, row in table.items()
        for role, outcome in zip(COLUMNS, row, strict=True)
    ]


def make_row(resource, tenant):
    """One object of `resource` belonging to `tenant`."""
    if resource == "user":
        return make_user(f"member_of_{tenant.slug}", tenants=[tenant])
    if resource == "tenant":
        return tenant
    factory = {
        "license": factories.LicenseFactory,
        "invoice": factories.InvoiceFactory,
        "machine": factories.MachineFactory,
        "post": factories.PostFactory,
        "material": factories.MaterialFactory,
        "template": factories.TemplateFactory,
        "modeltype": factories.ModelTypeFactory,
        "job": factories.JobFactory,
    }[resource]
    return factory(tenant=tenant)


def admin_url(resource, view, *args):
    meta = MODELS[resource]._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


@pytest.fixture
def people(role_users, tenant_a):
    """The four role users and a role-less staff user, all granted tenant A only."""
    return {**role_users, NO_ROLE: make_user("norole_a", tenants=[tenant_a])}


def signed_in(people, role, client_class=Client):
    return verified_client(client_class(), people[role])


def test_the_table_covers_every_role_and_registered_resource():
    assert set(COLUMNS) == {*ROLES, NO_ROLE}
    assert set(CHANGELIST) == set(ADD_PAGE) == set(OTHER_TENANT_ROW) == set(MODELS)


# ---------------------------------------------------------------- admin
@pytest.mark.parametrize(("resource", "role", "outcome"), cells(CHANGELIST))
def test_changelist(people, tenant_a, resource, role, outcome):
    row = make_row(resource, tenant_a)
    client = signed_in(people, role)
    response = client.get(admin_url(resource, "changelist"))
    if outcome == DENY:
        assert response.status_code == 403
        assert client.get(admin_url(resource, "change", row.pk)).status_code == 403
        return
    assert response.status_code == 200
    assert admin_url(resource, "change", row.pk) in response.content.decode()
    assert client.get(admin_url(resource, "change", row.pk)).status_code == 200


@pytest.mark.parametrize(("resource", "role", "outcome"), cells(ADD_PAGE))
def test_add_page(people, resource, role, outcome):
    response = signed_in(people, role).get(admin_url(resource, "add"))
    assert response.status_code == {OK: 200, DENY: 403}[outcome]


@pytest.mark.parametrize(("resource", "role", "outcome"), cells(OTHER_TENANT_ROW))
def test_another_tenants_row(people, tenant_a, tenant_b, resource, role, outcome):
    make_row(resource, tenant_a)
    foreign = make_row(resource, tenant_b)
    client = signed_in(people, role)
    change_url = admin_url(resource, "change", foreign.pk)
    response = client.get(change_url, HTTP_ACCEPT_LANGUAGE="en")
    if outcome == DENY:
        assert response.status_code == 403
        return
    assert outcome == HIDDEN
    # Django 5.2 treats an object outside get_queryset() as missing: a redirect to the index with a warning.
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    with translation.override("en"):
        name = str(MODELS[resource]._meta.verbose_name)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"{name} with ID “{foreign.pk}” doesn’t exist. Perhaps it was deleted?"
    ]
    listing = client.get(admin_url(resource, "changelist"))
    assert listing.status_code == 200
    assert change_url not in listing.content.decode()


@pytest.mark.parametrize(
    ("resource", "action", "role", "outcome"),
    [
        pytest.param(resource, action, role, outcome, id=f"{action}-{role.replace(' ', '_')}")
        for action, resource in (("cancel_selected", "job"), ("extend_selected", "license"))
        for role, outcome in zip(COLUMNS, ACTIONS[action], strict=True)
    ],
)
def test_bulk_action(people, tenant_a, tenant_b, resource, action, role, outcome):
    own, foreign = make_row(resource, tenant_a), make_row(resource, tenant_b)
    before = {obj.pk: MODELS[resource].objects.values().get(pk=obj.pk) for obj in (own, foreign)}
    client = signed_in(people, role)
    changelist = admin_url(resource, "changelist")
    listing = client.get(changelist)
    confirmed = {
        "action": action,
        helpers.ACTION_CHECKBOX_NAME: [own.pk, foreign.pk],
        "confirm": "yes",
        "reason": "matrix",
        "amount": "1",
        "unit": "months",
    }
    response = client.post(changelist, confirmed)
    after = {pk: MODELS[resource].objects.values().get(pk=pk) for pk in before}
    assert after[foreign.pk] == before[foreign.pk], "another tenant's row is never touched"
    if outcome == DENY:
        assert (listing.status_code, response.status_code) == (403, 403)
        assert after == before
        return
    assert listing.status_code == 200
    offered = f'value="{action}"' in listing.content.decode()
    if outcome == ABSENT:
        assert not offered
        assert response.status_code == 200
        assert after == before, "an action that is not offered cannot be run by posting it"
        return
    assert outcome == OFFERED
    assert offered
    assert response.status_code == 302
    if resource == "job":
        assert after[own.pk]["status"] == "cancelled"
    else:
        assert after[own.pk]["valid_until"] > before[own.pk]["valid_until"]


# ---------------------------------------------------------------- API
def _api_call(client, operation, job):
    if operation == "list":
        return client.get("/api/v1/jobs/")
    if operation == "detail":
        return client.get(f"/api/v1/jobs/{job.public_id}/")
    return client.post(f"/api/v1/jobs/{job.public_id}/status", {"status": "running"}, format="json")


@pytest.mark.parametrize(("operation", "role", "outcome"), cells(API))
def test_api_on_own_tenant(people, tenant_a, operation, role, outcome):
    job = factories.JobFactory(tenant=tenant_a)
    response = _api_call(signed_in(people, role, APIClient), operation, job)
    job.refresh_from_db()
    if outcome == DENY:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert job.status == "queued"
        return
    assert response.status_code == 200
    if operation == "list":
        assert [r["id"] for r in response.json()["results"]] == [str(job.public_id)]
    elif operation == "detail":
        assert response.json()["id"] == str(job.public_id)
    else:
        assert job.status == "running"
        assert JobStatusChange.objects.get(job=job).actor == people[role]


@pytest.mark.parametrize(("operation", "role", "outcome"), cells(API_OTHER_TENANT))
def test_api_on_another_tenant(people, tenant_b, operation, role, outcome):
    job = factories.JobFactory(tenant=tenant_b)
    response = _api_call(signed_in(people, role, APIClient), operation, job)
    job.refresh_from_db()
    assert job.status == "queued"
    assert response.status_code != 200 or operation == "list"
    if outcome == DENY:
        assert response.status_code == 403
        return
    assert outcome == HIDDEN
    if operation == "list":
        assert response.status_code == 200
        assert response.json()["results"] == []
    else:
        assert response.status_code == 404
        assert response.json()["type"] == "urn:tezgah:problem:not-found"


# ---------------------------------------------------------------- the groups come from the matrix
def _capabilities(group) -> set[str]:
    return {f"{app}.{code}" for app, code in group.permissions.values_list("content_type__app_label", "codename")}


def test_the_migration_created_exactly_the_four_role_groups_with_the_matrix_permissions():
    assert set(Group.objects.values_list("name", flat=True)) == {"admin", "analyst", "operator", "auditor"}
    for role in ROLES:
        group = Group.objects.get(name=role)
        assert _capabilities(group) == set(ROLE_CAPABILITIES[role]), role
        assert group.permissions.count() == len(set(ROLE_CAPABILITIES[role])), f"{role}: a capability matched twice"


def test_sync_roles_restores_drift_and_is_idempotent():
    operator = Group.objects.get(name=OPERATOR)
    operator.permissions.remove(*operator.permissions.filter(codename="cancel_job"))
    operator.permissions.add(*Group.objects.get(name=ADMIN).permissions.filter(codename="delete_job"))
    Group.objects.get(name=AUDITOR).delete()

    first = StringIO()
    call_command("sync_roles", stdout=first)
    groups = {g.name: (g.pk, _capabilities(g)) for g in Group.objects.all()}
    assert {name: caps for name, (_pk, caps) in groups.items()} == {r: set(c) for r, c in ROLE_CAPABILITIES.items()}

    second = StringIO()
    call_command("sync_roles", stdout=second)
    assert {g.name: (g.pk, _capabilities(g)) for g in Group.objects.all()} == groups
    assert second.getvalue() == first.getvalue()
    assert f"operator: {len(ROLE_CAPABILITIES[OPERATOR])} capabilities" in second.getvalue()


# ---------------------------------------------------------------- scoping SQL
def test_tenant_scoping_uses_exists_subqueries_not_id_lists(people, tenant_a, tenant_b):
    user = people[OPERATOR]
    make_user("other_tenant_user", tenants=[tenant_b])
    querysets = {
        "jobs": scope_to_tenants(Job.objects.all(), user),
        "api jobs": jobs_visible_to(user),
        "tenants": tenants_for(user),
        "users": users_visible_to(people[ADMIN]),
    }
    for name, queryset in querysets.items():
        sql = str(queryset.query)
        assert "EXISTS" in sql.upper(), f"{name}: {sql}"
        assert not re.search(r"\bIN\s*\(", sql, flags=re.IGNORECASE), f"{name} carries an IN list: {sql}"
    # The scoping is real, not just the shape of the SQL.
    assert list(querysets["tenants"]) == [tenant_a]
    assert "other_tenant_user" not in set(querysets["users"].values_list("username", flat=True))


def test_a_tenant_granted_through_a_group_counts_too(tenant_a, tenant_b):
    from guardian.shortcuts import assign_perm

    group = Group.objects.create(name="anadolu-floor")
    assign_perm("accounts.access_tenant", group, tenant_b)
    user = make_user("via_group", roles=[OPERATOR], tenants=[tenant_a])
    user.groups.add(group)
    job_b = factories.JobFactory(tenant=tenant_b)
    assert set(tenants_for(user)) == {tenant_a, tenant_b}
    assert list(scope_to_tenants(Job.objects.all(), user)) == [job_b]
