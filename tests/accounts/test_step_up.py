"""Step-up: removing a second factor or changing a user's roles needs a fresh TOTP code, not just the session."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django import forms
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import mfa_session, otp_secrets, services
from apps.accounts.models import User
from tests.conftest import confirmed_device, make_user, totp_code, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen():
    """Time stands still in the middle of the current 30-second TOTP step (sessions made earlier stay valid)."""
    now = time.time()
    with time_machine.travel(now - now % 30 + 15, tick=False) as traveller:
        yield traveller


@pytest.fixture
def own_device(superuser):
    return confirmed_device(superuser)


@pytest.fixture
def admin_client(client, superuser, own_device):
    """A superuser signed in with password and TOTP, who has not stepped up yet."""
    return verified_client(client, superuser)


@pytest.fixture
def target(tenant_a):
    return make_user("ayse", roles=["operator"], tenants=[tenant_a])


@pytest.fixture
def target_totp(target):
    return confirmed_device(target)


@pytest.fixture
def target_backup(target):
    services.issue_backup_codes(target)
    return StaticDevice.objects.get(user=target)


def wrong_code(device) -> str:
    near = {totp_code(device, offset_steps=s) for s in range(-3, 4)}
    return next(c for c in ("000000", "111111", "123456", "654321", "999999") if c not in near)


def delete_url(device) -> str:
    meta = device._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[device.pk])


def step_up(client, code, next_url=""):
    return client.post(reverse("admin:mfa_step_up"), {"token": code, "next": next_url})


def assert_sent_to_step_up(response, next_url):
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("admin:mfa_step_up")
    assert parse_qs(location.query)["next"] == [next_url]


# ---------------------------------------------------------------- removing a device
@pytest.mark.parametrize("device_fixture", ["target_totp", "target_backup"])
def test_deleting_a_device_without_a_fresh_code_redirects_to_step_up(admin_client, request, device_fixture):
    device = request.getfixturevalue(device_fixture)
    url = delete_url(device)

    assert_sent_to_step_up(admin_client.get(url), url)
    assert_sent_to_step_up(admin_client.post(url, {"post": "yes"}), url)

    assert type(device).objects.filter(pk=device.pk).exists()


@pytest.mark.parametrize("device_fixture", ["target_totp", "target_backup"])
def test_after_a_valid_step_up_code_the_device_is_deleted(admin_client, own_device, request, device_fixture):
    device = request.getfixturevalue(device_fixture)
    url = delete_url(device)
    page = admin_client.get(admin_client.get(url)["Location"])
    assert page.status_code == 200
    assert page.context["next"] == url

    response = step_up(admin_client, totp_code(own_device), url)
    assert response.status_code == 302
    assert response["Location"] == url

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not type(device).objects.filter(pk=device.pk).exists()


def test_step_up_refuses_a_backup_code(admin_client, superuser, target_totp):
    codes = services.issue_backup_codes(superuser)
    url = delete_url(target_totp)

    response = step_up(admin_client, codes[0], url)

    assert response.status_code == 200
    assert "token" in response.context["form"].errors
    assert mfa_session.STEPUP_KEY not in admin_client.session
    assert StaticToken.objects.filter(device__user=superuser, token=otp_secrets.hash_backup_code(codes[0])).exists(), (
        "the code was not spent"
    )
    assert_sent_to_step_up(admin_client.post(url, {"post": "yes"}), url)
    assert TOTPDevice.objects.filter(pk=target_totp.pk).exists()


def test_step_up_refuses_a_wrong_code(admin_client, own_device, target_totp):
    response = step_up(admin_client, wrong_code(own_device), delete_url(target_totp))

    assert response.status_code == 200
    assert "token" in response.context["form"].errors
    assert mfa_session.STEPUP_KEY not in admin_client.session


def test_step_up_refuses_the_code_just_used_to_sign_in(client, superuser, own_device, target_totp, frozen):
    code = totp_code(own_device)
    client.post(reverse("admin:login"), {"username": "root", "password": "correct horse battery staple"})
    assert client.post(reverse("admin:mfa_verify"), {"token": code})["Location"] == reverse("admin:index")

    response = step_up(client, code, delete_url(target_totp))

    assert response.status_code == 200
    assert "token" in response.context["form"].errors
    assert mfa_session.STEPUP_KEY not in client.session


@pytest.mark.parametrize("wait, still_stepped_up", [(50, True), (70, False)])
@override_settings(MFA_STEPUP_TTL_SECONDS=60)
def test_a_step_up_lapses_after_mfa_stepup_ttl_seconds(
    admin_client, own_device, target_totp, frozen, wait, still_stepped_up
):
    url = delete_url(target_totp)
    step_up(admin_client, totp_code(own_device), url)

    frozen.shift(wait)
    response = admin_client.get(url)

    if still_stepped_up:
        assert response.status_code == 200
    else:
        assert_sent_to_step_up(response, url)


def test_devices_cannot_be_deleted_in_bulk(admin_client, own_device, target_totp):
    step_up(admin_client, totp_code(own_device))
    changelist = reverse("admin:otp_totp_totpdevice_changelist")

    page = admin_client.get(changelist)
    response = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [target_totp.pk], "post": "yes"}
    )

    assert page.status_code == 200
    assert page.context["action_form"] is None or "delete_selected" not in dict(
        page.context["action_form"].fields["action"].choices
    )
    assert response.status_code in (200, 302)
    assert TOTPDevice.objects.filter(pk=target_totp.pk).exists()


@pytest.mark.parametrize("stepped_up", [False, True])
def test_unconfirming_a_device_needs_a_step_up(admin_client, own_device, target_totp, stepped_up):
    """Unticking "confirmed" takes the device from its owner as surely as deleting it."""
    url = reverse("admin:otp_totp_totpdevice_change", args=[target_totp.pk])
    data = change_form_data(admin_client.get(url))
    data.pop("confirmed")
    if stepped_up:
        step_up(admin_client, totp_code(own_device))

    response = admin_client.post(url, data)

    target_totp.refresh_from_db()
    if stepped_up:
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:otp_totp_totpdevice_changelist")
        assert not target_totp.confirmed
    else:
        assert_sent_to_step_up(response, url)
        assert target_totp.confirmed


def test_adding_a_device_for_somebody_needs_a_step_up(admin_client, target):
    url = reverse("admin:otp_static_staticdevice_add")
    data = {"user": target.pk, "name": "planted", "confirmed": "on"}
    data |= {f"token_set-{k}": v for k, v in {"TOTAL_FORMS": 1, "INITIAL_FORMS": 0, "0-token": "12345678"}.items()}

    response = admin_client.post(url, data)

    assert_sent_to_step_up(response, url)
    assert not StaticDevice.objects.filter(user=target).exists()


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/"])
def test_step_up_ignores_an_open_redirect_in_next(admin_client, own_device, next_url):
    response = step_up(admin_client, totp_code(own_device), next_url)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


# ---------------------------------------------------------------- changing roles
def change_form_data(response) -> dict:
    """What a browser would post back from an admin change form, unchanged."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None:
            continue
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = value
    return data


def user_change_url(user) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def role_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def post_change(client, user, **changes):
    url = user_change_url(user)
    data = change_form_data(client.get(url)) | changes
    return client.post(url, data)


def test_changing_roles_without_a_code_is_refused_and_groups_stay(admin_client, target):
    response = post_change(admin_client, target, roles=["analyst"])

    assert response.status_code == 200
    assert "confirm_code" in response.context["adminform"].form.errors
    assert role_names(target) == {"operator"}


@pytest.mark.parametrize("kind", ["wrong", "backup"])
def test_changing_roles_with_a_wrong_or_backup_code_is_refused(admin_client, superuser, own_device, target, kind):
    code = wrong_code(own_device) if kind == "wrong" else services.issue_backup_codes(superuser)[0]

    response = post_change(admin_client, target, roles=["analyst"], confirm_code=code)

    assert response.status_code == 200
    assert "confirm_code" in response.context["adminform"].form.errors
    assert role_names(target) == {"operator"}


def test_changing_roles_with_a_fresh_code_succeeds(admin_client, own_device, target):
    response = post_change(admin_client, target, roles=["analyst", "auditor"], confirm_code=totp_code(own_device))

    assert response.status_code == 302
    assert role_names(target) == {"analyst", "auditor"}


def test_a_code_already_used_cannot_confirm_a_second_role_change(admin_client, own_device, target, frozen):
    code = totp_code(own_device)
    assert post_change(admin_client, target, roles=["analyst"], confirm_code=code).status_code == 302
    session = admin_client.session  # forget the step-up, so the next change asks for a code again
    del session[mfa_session.STEPUP_KEY]
    session.save()

    response = post_change(admin_client, target, roles=["auditor"], confirm_code=code)

    assert response.status_code == 200
    assert role_names(target) == {"analyst"}


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_changing_staff_or_superuser_status_needs_a_code(admin_client, target, flag):
    changes = {"is_superuser": "on"} if flag == "is_superuser" else {}
    data = change_form_data(admin_client.get(user_change_url(target))) | changes
    if flag == "is_staff":
        data.pop("is_staff")

    response = admin_client.post(user_change_url(target), data)

    assert response.status_code == 200
    assert "confirm_code" in response.context["adminform"].form.errors
    target.refresh_from_db()
    assert target.is_staff and not target.is_superuser


def test_editing_a_user_without_touching_roles_needs_no_code(admin_client, target):
    response = post_change(admin_client, target, first_name="Ayşe")

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.first_name == "Ayşe"
    assert role_names(target) == {"operator"}


# ---------------------------------------------------------------- tenant admins and superuser status
@pytest.fixture
def tenant_admin(role_users):
    return role_users["admin"]


@pytest.fixture
def tenant_admin_client(client, tenant_admin):
    return verified_client(client, tenant_admin)


def test_a_tenant_admin_does_not_see_the_superuser_flag(tenant_admin_client, tenant_admin, target):
    for url in (user_change_url(target), user_change_url(tenant_admin), reverse("admin:accounts_user_add")):
        response = tenant_admin_client.get(url)
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert "is_superuser" not in form.fields
        assert 'name="is_superuser"' not in response.content.decode()
        assert "roles" in form.fields, "a tenant admin does manage roles"


@pytest.mark.parametrize("whom", ["target", "tenant_admin"])
def test_a_tenant_admin_cannot_grant_superuser_status(tenant_admin_client, tenant_admin, request, whom):
    user = request.getfixturevalue(whom)
    code = totp_code(confirmed_device(tenant_admin))

    response = post_change(tenant_admin_client, user, is_superuser="on", confirm_code=code)

    assert response.status_code == 302  # saved, with the forged field ignored
    user.refresh_from_db()
    assert not user.is_superuser


def test_a_tenant_admin_cannot_create_a_superuser(tenant_admin_client, tenant_admin, tenant_a):
    code = totp_code(confirmed_device(tenant_admin))
    data = {
        "username": "yeni",
        "usable_password": "true",
        "password1": "a long enough passphrase 42",
        "password2": "a long enough passphrase 42",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "roles": ["operator"],
        "tenants": [str(tenant_a.pk)],
        "confirm_code": code,
    }

    response = tenant_admin_client.post(reverse("admin:accounts_user_add"), data)

    assert response.status_code == 302
    created = User.objects.get(username="yeni")
    assert not created.is_superuser
    assert role_names(created) == {"operator"}


def test_a_tenant_admin_changes_roles_with_a_fresh_code(tenant_admin_client, tenant_admin, target):
    # analyst, not auditor: a tenant admin gives only roles whose capabilities it holds (issue 11).
    assert post_change(tenant_admin_client, target, roles=["analyst"]).status_code == 200
    assert role_names(target) == {"operator"}

    code = totp_code(confirmed_device(tenant_admin))
    response = post_change(tenant_admin_client, target, roles=["analyst"], confirm_code=code)

    assert response.status_code == 302
    assert role_names(target) == {"analyst"}
    assert Group.objects.get(name="analyst").user_set.filter(pk=target.pk).exists()


def test_a_tenant_admin_cannot_change_a_superuser_in_their_tenant(tenant_admin_client, superuser, tenant_a):
    services.grant_tenant_access(superuser, tenant_a)

    response = tenant_admin_client.post(user_change_url(superuser), {"username": "root", "first_name": "x"})
    password = tenant_admin_client.get(reverse("admin:auth_user_password_change", args=[superuser.pk]))
    delete = tenant_admin_client.post(reverse("admin:accounts_user_delete", args=[superuser.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert password.status_code == 403
    assert delete.status_code == 403
    superuser.refresh_from_db()
    assert superuser.is_superuser and superuser.is_staff and superuser.first_name == ""


def test_changing_tenants_without_a_code_is_refused_and_grants_stay(admin_client, target, tenant_b):
    from apps.accounts.selectors import tenant_ids_of

    before = tenant_ids_of(target)
    response = post_change(admin_client, target, tenants=[str(pk) for pk in [*before, tenant_b.pk]])

    assert response.status_code == 200
    assert "confirm_code" in response.context["adminform"].form.errors
    assert tenant_ids_of(target) == before
