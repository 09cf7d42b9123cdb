"""Issue 11/12: an enrolment belongs to the account's owner, and its pending key stays put until confirmed."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services
from apps.accounts.models import User
from apps.audit.models import AuditLog
from tests.conftest import PASSWORD, make_user, totp_code, verified_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a resetter's chosen passphrase 7"


@pytest.fixture
def victim(tenant_a):
    """Staff of tenant A who has never enrolled an authenticator."""
    user = make_user("meltem", roles=["analyst"], tenants=[tenant_a])
    user.email = "meltem@anadolu.example"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def tenant_admin(tenant_a):
    return make_user("yonetici", roles=["admin"], tenants=[tenant_a])


def password_step(client, username, password):
    return client.post(reverse("admin:login"), {"username": username, "password": password})


def code_from(message) -> str:
    return re.search(r"\b(\d{8})\b", message.body).group(1)


def assert_asks_for_owner_code(client):
    """The enrolment URL shows the owner-code step, with no key or QR code."""
    response = client.get(reverse("admin:mfa_enrol"))
    assert response.status_code == 200
    assert "masked_email" in response.context and "secret" not in response.context
    assert "otpauth" not in response.content.decode() and "data:image/svg" not in response.content.decode()
    return response


def reset_password_in_admin(admin_client, user, password=NEW_PASSWORD):
    with TestCase.captureOnCommitCallbacks(execute=True):  # the notice is mailed once the change commits
        response = admin_client.post(
            reverse("admin:auth_user_password_change", args=[user.pk]),
            {"password1": password, "password2": password, "usable_password": "true"},
        )
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.check_password(password)


# ---------------------------------------------------------------- the attack path, end to end
def test_an_admin_who_reset_a_password_cannot_enrol_its_own_authenticator(client, victim, tenant_admin, settings):
    # The sign-in lockout (issue 14, tests/security/test_lockout.py) would stop these guesses first.
    settings.AXES_FAILURE_LIMIT = 20
    reset_password_in_admin(verified_client(Client(), tenant_admin), victim)
    assert User.objects.get(pk=victim.pk).mfa_owner_proof_required
    notice = [m for m in mail.outbox if victim.email in m.to]
    assert len(notice) == 1 and "yonetici" in notice[0].body, "the owner is told who changed the account"
    mail.outbox.clear()

    # The admin signs in as the victim with the password it chose...
    response = password_step(client, "meltem", NEW_PASSWORD)
    assert response["Location"] == reverse("admin:mfa_enrol")
    # ...and is stopped before any key is shown.
    assert_asks_for_owner_code(client)
    assert not TOTPDevice.objects.filter(user=victim).exists()
    response = client.post(reverse("admin:mfa_enrol"), {"token": "123456"})
    assert response.status_code == 200 and "token" in response.context["form"].errors
    assert not TOTPDevice.objects.filter(user=victim).exists()

    # Asking for the code mails it to the owner, never to the person at the keyboard.
    client.post(reverse("admin:mfa_enrol"), {"send": "1"})
    assert [m.to for m in mail.outbox] == [[victim.email]]
    real_code = code_from(mail.outbox[0])
    page = client.get(reverse("admin:mfa_enrol")).content.decode()
    assert real_code not in page and victim.email not in page, "the page shows neither the code nor the address"

    # Guessing voids the code after a few tries; even the right code is then refused.
    for guess in ("00000000", "11111111", "22222222", "33333333", "44444444"):
        response = client.post(reverse("admin:mfa_enrol"), {"token": guess})
        assert response.status_code == 200 and "token" in response.context["form"].errors
    response = client.post(reverse("admin:mfa_enrol"), {"token": real_code})
    assert response.status_code == 200
    assert_asks_for_owner_code(client)
    assert not TOTPDevice.objects.filter(user=victim).exists()
    assert SESSION_KEY not in client.session
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))


def test_the_owner_enrols_with_the_code_from_their_mailbox_and_the_mark_is_cleared(victim, tenant_admin):
    reset_password_in_admin(verified_client(Client(), tenant_admin), victim)
    mail.outbox.clear()

    owner = Client()
    password_step(owner, "meltem", NEW_PASSWORD)
    owner.post(reverse("admin:mfa_enrol"), {"send": "1"})
    response = owner.post(reverse("admin:mfa_enrol"), {"token": code_from(mail.outbox[-1])})
    assert response["Location"] == reverse("admin:mfa_enrol")

    enrol = owner.get(reverse("admin:mfa_enrol"))
    assert enrol.status_code == 200 and enrol.context["secret"]
    device = TOTPDevice.objects.get(user=victim, confirmed=False)
    response = owner.post(reverse("admin:mfa_enrol"), {"token": totp_code(device)})
    assert response.status_code == 302
    assert owner.session[SESSION_KEY] == str(victim.pk)
    assert not User.objects.get(pk=victim.pk).mfa_owner_proof_required
    assert AuditLog.objects.filter(action="auth.mfa_owner_proven").exists()


def test_a_code_mailed_to_one_sign_in_does_not_open_another(victim, tenant_admin):
    reset_password_in_admin(verified_client(Client(), tenant_admin), victim)
    owner, other = Client(), Client()
    password_step(owner, "meltem", NEW_PASSWORD)
    owner.post(reverse("admin:mfa_enrol"), {"send": "1"})
    password_step(other, "meltem", NEW_PASSWORD)

    response = other.post(reverse("admin:mfa_enrol"), {"token": code_from(mail.outbox[-1])})

    assert response.status_code == 200
    assert_asks_for_owner_code(other)


def test_a_reset_discards_a_pending_key_the_resetter_might_have_seen(victim, tenant_admin):
    pending = services.start_totp_enrolment(victim)
    reset_password_in_admin(verified_client(Client(), tenant_admin), victim)
    assert not TOTPDevice.objects.filter(pk=pending.pk).exists()


def test_an_account_without_e_mail_cannot_be_enrolled_after_a_reset(client, victim, tenant_admin):
    User.objects.filter(pk=victim.pk).update(email="")
    reset_password_in_admin(verified_client(Client(), tenant_admin), victim)
    password_step(client, "meltem", NEW_PASSWORD)

    response = client.post(reverse("admin:mfa_enrol"), {"send": "1"}, follow=True)

    assert "e-posta adresi yok" in response.content.decode()  # "no e-mail address", in the default Turkish
    assert mail.outbox == [] or all(not m.to for m in mail.outbox)


def test_a_new_user_made_in_the_admin_and_an_e_mail_change_both_need_the_owner(tenant_admin, tenant_a, victim):
    admin_client = verified_client(Client(), tenant_admin)
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "yeni",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "is_active": "on",
            "is_staff": "on",
            "tenants": [str(tenant_a.pk)],
        },
    )
    assert response.status_code == 302, response.content
    assert User.objects.get(username="yeni").mfa_owner_proof_required

    assert not User.objects.get(pk=victim.pk).mfa_owner_proof_required
    response = admin_client.get(reverse("admin:accounts_user_change", args=[victim.pk]))
    form = response.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if k in form.fields and v is not None and k != "password"}
    data.update(
        email="attacker@elsewhere.example", is_active="on", is_staff="on", tenants=[str(tenant_a.pk)], roles=["analyst"]
    )
    data = {k: v for k, v in data.items() if not isinstance(v, bool)} | {"is_active": "on", "is_staff": "on"}
    data.pop("last_login", None)
    data.pop("date_joined", None)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = admin_client.post(reverse("admin:accounts_user_change", args=[victim.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(pk=victim.pk).mfa_owner_proof_required
    told = {address for m in mail.outbox for address in m.to}
    assert "meltem@anadolu.example" in told, "the previous address hears of the change"


def test_the_service_marks_a_password_set_by_someone_else_but_not_by_the_owner(victim, tenant_admin):
    services.set_user_password(victim, "the owner's own passphrase 1", actor=victim)
    assert not User.objects.get(pk=victim.pk).mfa_owner_proof_required

    services.set_user_password(victim, NEW_PASSWORD, actor=tenant_admin)
    assert User.objects.get(pk=victim.pk).mfa_owner_proof_required
    assert AuditLog.objects.filter(action="accounts.set_by_other", object_id=str(victim.pk)).exists()


# ---------------------------------------------------------------- the pending key (issue 12)
def test_an_unfinished_enrolment_shows_the_same_key_at_the_next_sign_in(victim):
    first = Client()
    password_step(first, "meltem", PASSWORD)
    shown_first = first.get(reverse("admin:mfa_enrol")).context["secret"]

    second = Client()  # the next day, another browser: a new password step and session
    password_step(second, "meltem", PASSWORD)
    response = second.get(reverse("admin:mfa_enrol"))
    assert response.context["secret"] == shown_first

    # The app that scanned the first key confirms it.
    device = TOTPDevice.objects.get(user=victim, confirmed=False)
    response = second.post(reverse("admin:mfa_enrol"), {"token": totp_code(device)})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=victim, confirmed=True).pk == device.pk


def test_start_over_makes_a_new_key_and_the_old_one_stops_working(client, victim):
    password_step(client, "meltem", PASSWORD)
    old_secret = client.get(reverse("admin:mfa_enrol")).context["secret"]
    old_device = TOTPDevice.objects.get(user=victim, confirmed=False)
    old_code = totp_code(old_device)

    response = client.post(reverse("admin:mfa_enrol"), {"start_over": "1"})
    assert response["Location"] == reverse("admin:mfa_enrol")
    page = client.get(reverse("admin:mfa_enrol"))
    assert page.context["secret"] != old_secret
    assert TOTPDevice.objects.filter(user=victim, confirmed=False).count() == 1

    new_device = TOTPDevice.objects.get(user=victim, confirmed=False)
    if old_code != totp_code(new_device):
        refused = client.post(reverse("admin:mfa_enrol"), {"token": old_code})
        assert refused.status_code == 200 and "token" in refused.context["form"].errors
    assert AuditLog.objects.filter(action="auth.mfa_enrolment_restarted").exists()
