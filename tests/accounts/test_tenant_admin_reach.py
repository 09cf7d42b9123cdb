"""A tenant admin manages only users whose every tenant is theirs, gives only roles and tenants it holds itself,
and never touches a superuser; a password set by somebody else is audited and flagged (issue 11)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from apps.accounts import mfa_session, selectors, services
from apps.accounts.models import User
from apps.audit.models import AuditLog
from tests.conftest import make_user, verified_client

from .test_step_up import change_form_data, role_names, user_change_url

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Zeytin-Dali-2026-kirmizi"


@pytest.fixture
def admin_a(tenant_a):
    return make_user("yonetici_a", roles=["admin"], tenants=[tenant_a])


@pytest.fixture
def local(tenant_a):
    """A user of tenant A only: within the tenant admin's reach."""
    return make_user("yerel", roles=["operator"], tenants=[tenant_a])


@pytest.fixture
def shared(tenant_a, tenant_b):
    """A not-yet-enrolled user of tenants A and B: out of reach of A's admin."""
    return make_user("ortak", roles=["operator"], tenants=[tenant_a, tenant_b])


def stepped_up(client, user):
    """`user` signed in with both factors, and stepped up, so only the scoping rules can refuse a change."""
    verified_client(client, user)
    session = client.session
    session[mfa_session.STEPUP_KEY] = 10**12  # far in the future: always "recent"
    session.save()
    return client


@pytest.fixture
def admin_client(client, admin_a):
    return stepped_up(client, admin_a)


def password_url(user) -> str:
    return reverse("admin:auth_user_password_change", args=[user.pk])


def post_password(client, user, password=NEW_PASSWORD):
    return client.post(password_url(user), {"password1": password, "password2": password, "usable_password": "true"})


def changelist_usernames(client) -> set[str]:
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 200
    return {u.username for u in response.context["cl"].result_list}


def assert_does_not_exist(response):
    """The admin's answer for a row outside the requester's queryset: back to the index, "doesn't exist"."""
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


# ---------------------------------------------------------------- seeing
def test_a_tenant_admin_lists_users_of_its_tenant_but_not_one_who_also_has_another_tenant(
    admin_client, admin_a, local, shared
):
    tenantless = make_user("bosta")

    names = changelist_usernames(admin_client)

    assert names == {"yonetici_a", "yerel"}
    assert shared.username not in names and tenantless.username not in names


def test_a_tenant_granted_through_a_group_counts_as_one_of_the_users_tenants(admin_client, tenant_b, local):
    group = Group.objects.create(name="B ekibi")
    services.grant_tenant_access(group, tenant_b)
    local.groups.add(group)

    assert "yerel" not in changelist_usernames(admin_client)


def test_a_superuser_lists_everybody(client, superuser, admin_a, local, shared):
    stepped_up(client, superuser)

    assert {"root", "yonetici_a", "yerel", "ortak"} <= changelist_usernames(client)


def test_the_user_of_two_tenants_does_not_exist_on_the_change_page(admin_client, shared):
    assert_does_not_exist(admin_client.get(user_change_url(shared)))


# ---------------------------------------------------------------- editing and password
def test_a_tenant_admin_cannot_give_the_user_of_two_tenants_the_admin_role(admin_client, local, shared):
    # The form data of a user within reach, posted to the other user's change URL (as a crafted request would).
    data = change_form_data(admin_client.get(user_change_url(local))) | {"username": "ortak", "roles": ["admin"]}

    response = admin_client.post(user_change_url(shared), data)

    assert_does_not_exist(response)
    assert role_names(shared) == {"operator"}
    assert not shared.__class__.objects.get(pk=shared.pk).has_perm("billing.delete_invoice")


def test_a_tenant_admin_cannot_reset_the_password_of_the_user_of_two_tenants(admin_client, shared):
    assert admin_client.get(password_url(shared)).status_code == 404

    response = post_password(admin_client, shared)

    assert response.status_code == 404
    shared.refresh_from_db()
    assert not shared.check_password(NEW_PASSWORD)
    assert not shared.mfa_owner_proof_required


def test_a_tenant_admin_cannot_give_a_tenant_it_does_not_have(admin_client, tenant_a, tenant_b, local):
    data = change_form_data(admin_client.get(user_change_url(local))) | {
        "tenants": [str(tenant_a.pk), str(tenant_b.pk)]
    }

    response = admin_client.post(user_change_url(local), data)

    assert response.status_code == 200
    assert "tenants" in response.context["adminform"].form.errors
    assert selectors.tenant_ids_of(local) == [tenant_a.pk]


def test_the_tenant_service_refuses_a_tenant_the_actor_does_not_have(admin_a, tenant_a, tenant_b, local):
    with pytest.raises(services.GrantRefused):
        services.set_user_tenants(local, [tenant_a, tenant_b], actor=admin_a)

    assert selectors.tenant_ids_of(local) == [tenant_a.pk]


def test_removing_the_editors_tenant_keeps_the_users_other_grants(superuser, admin_a, tenant_a, tenant_b, local):
    services.grant_tenant_access(admin_a, tenant_b)
    services.set_user_tenants(local, [tenant_a, tenant_b], actor=admin_a)  # now A admin of A+B gives B
    services.revoke_tenant_access(admin_a, tenant_b)

    services.set_user_tenants(local, [], actor=admin_a)

    assert selectors.tenant_ids_of(local) == [tenant_b.pk]


@pytest.fixture
def lesser_admin(tenant_a):
    """Manages users of tenant A (change_user, assign_roles) but holds only the operator role's capabilities."""
    user = make_user("vardiya_amiri", roles=["operator"], tenants=[tenant_a])
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_user", "change_user", "assign_roles"]
        )
    )
    return user


def test_a_tenant_admin_cannot_grant_a_role_whose_capabilities_it_lacks(client, lesser_admin, local):
    stepped_up(client, lesser_admin)
    data = change_form_data(client.get(user_change_url(local))) | {"roles": ["operator", "admin"]}

    response = client.post(user_change_url(local), data)

    assert response.status_code == 200
    assert "roles" in response.context["adminform"].form.errors
    assert role_names(local) == {"operator"}


def test_the_role_service_refuses_a_role_the_actor_lacks_and_keeps_the_ones_it_cannot_give(lesser_admin, local):
    with pytest.raises(services.GrantRefused):
        services.set_user_roles(local, ["operator", "admin"], actor=lesser_admin)
    local.groups.add(Group.objects.get(name="analyst"))  # given by somebody who may

    services.set_user_roles(local, [], actor=lesser_admin)

    assert role_names(local) == {"analyst"}  # operator was the lesser admin's to take, analyst was not


def test_a_tenant_admin_is_offered_only_the_roles_it_may_give(client, lesser_admin, local):
    stepped_up(client, lesser_admin)

    form = client.get(user_change_url(local)).context["adminform"].form

    assert [value for value, _label in form.fields["roles"].choices] == ["operator"]


def test_a_tenant_admin_cannot_reset_the_password_of_a_user_holding_capabilities_it_lacks(
    client, lesser_admin, tenant_a
):
    colleague = make_user("planlamaci", roles=["operator", "analyst"], tenants=[tenant_a])
    stepped_up(client, lesser_admin)

    assert client.get(user_change_url(colleague)).status_code == 200  # visible, read-only
    response = post_password(client, colleague)

    assert response.status_code == 403
    colleague.refresh_from_db()
    assert not colleague.check_password(NEW_PASSWORD)


def test_an_inactive_users_capabilities_still_count(lesser_admin, tenant_a):
    dormant = make_user("eski_yonetici", roles=["admin"], tenants=[tenant_a])
    User.objects.filter(pk=dormant.pk).update(is_active=False)
    dormant.refresh_from_db()

    assert not selectors.can_manage_user(lesser_admin, dormant)


def test_a_tenant_admin_cannot_change_or_reset_a_superuser_of_its_tenant(admin_client, tenant_a):
    boss = make_user("patron", superuser=True, tenants=[tenant_a])

    assert admin_client.get(user_change_url(boss)).status_code == 200  # visible, read-only
    assert post_password(admin_client, boss).status_code == 403
    assert admin_client.post(reverse("admin:accounts_user_delete", args=[boss.pk]), {"post": "yes"}).status_code == 403
    boss.refresh_from_db()
    assert not boss.check_password(NEW_PASSWORD)


def test_a_tenant_admin_must_give_a_new_user_one_of_its_tenants(admin_client, tenant_a):
    data = {"username": "yeni", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    data |= {"is_active": "on", "is_staff": "on"}

    response = admin_client.post(reverse("admin:accounts_user_add"), data)

    assert response.status_code == 200
    assert "tenants" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="yeni").exists()

    response = admin_client.post(reverse("admin:accounts_user_add"), data | {"tenants": [str(tenant_a.pk)]})

    assert response.status_code == 302
    assert selectors.tenant_ids_of(User.objects.get(username="yeni")) == [tenant_a.pk]


# ---------------------------------------------------------------- password set by somebody else
def test_a_password_set_by_the_admin_is_audited_and_flags_the_user(admin_client, admin_a, local):
    response = post_password(admin_client, local)

    assert response.status_code == 302
    local.refresh_from_db()
    assert local.check_password(NEW_PASSWORD)
    assert local.mfa_owner_proof_required
    entry = AuditLog.objects.get(action="accounts.set_by_other")
    assert (entry.actor_type, entry.actor_id, entry.object_id) == ("user", str(admin_a.pk), str(local.pk))
    assert entry.payload["what"] == "password" and entry.payload["via"] == "admin.password"
    assert NEW_PASSWORD not in str(entry.payload)


def test_a_user_setting_their_own_password_is_audited_and_not_flagged(client, tenant_a):
    target = make_user("kendi", roles=["admin"], tenants=[tenant_a])
    stepped_up(client, target)

    assert post_password(client, target).status_code == 302

    target.refresh_from_db()
    assert not target.mfa_owner_proof_required
    assert AuditLog.objects.filter(action="accounts.password_changed", actor_id=str(target.pk)).exists()


def test_a_new_users_first_password_given_by_an_admin_counts_as_set_by_somebody_else(admin_client, tenant_a):
    data = {"username": "yeni", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    response = admin_client.post(reverse("admin:accounts_user_add"), data | {"tenants": [str(tenant_a.pk)]})

    assert response.status_code == 302
    newcomer = User.objects.get(username="yeni")
    assert newcomer.mfa_owner_proof_required
    assert AuditLog.objects.filter(action="accounts.set_by_other", object_id=str(newcomer.pk)).exists()


def test_a_tenant_admin_cannot_make_an_auditor_who_would_read_the_tenantless_audit_entries(admin_client, local):
    data = change_form_data(admin_client.get(user_change_url(local))) | {"roles": ["auditor"]}

    response = admin_client.post(user_change_url(local), data)

    assert response.status_code == 200
    assert "roles" in response.context["adminform"].form.errors
    assert role_names(local) == {"operator"}
    assert selectors.grantable_roles(local.__class__.objects.get(username="yonetici_a")) == [
        "admin",
        "analyst",
        "operator",
    ]


def test_an_email_changed_by_the_admin_marks_the_account_and_tells_both_addresses(
    admin_client, local, django_capture_on_commit_callbacks
):
    from django.core import mail

    local.email = "eski@anadolu.example"
    local.save(update_fields=["email"])
    data = change_form_data(admin_client.get(user_change_url(local))) | {"email": "yeni@anadolu.example"}

    with django_capture_on_commit_callbacks(execute=True):  # the notice is mailed after commit
        response = admin_client.post(user_change_url(local), data)

    assert response.status_code == 302
    local.refresh_from_db()
    assert local.email == "yeni@anadolu.example" and local.mfa_owner_proof_required
    assert AuditLog.objects.filter(action="accounts.set_by_other", object_id=str(local.pk)).exists()
    assert sorted(r for m in mail.outbox for r in m.to) == ["eski@anadolu.example", "yeni@anadolu.example"]
