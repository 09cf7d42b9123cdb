"""Issue 11: TOTP secrets are encrypted at rest and backup codes hashed, with a key ring outside the database."""

import importlib
import io
import secrets

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import checks, otp_secrets, services
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

pytestmark = pytest.mark.django_db

migration = importlib.import_module("apps.accounts.migrations.0005_encrypt_totp_keys_and_hash_backup_codes")


def stored_key(device) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [device.pk])
        return cursor.fetchone()[0]


def stored_tokens(user) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.token FROM otp_static_statictoken t JOIN otp_static_staticdevice d ON d.id = t.device_id "
            "WHERE d.user_id = %s",
            [user.pk],
        )
        return {row[0] for row in cursor.fetchall()}


def new_key() -> str:
    return secrets.token_urlsafe(32)


def signs_in(user, code) -> bool:
    client = Client()
    client.post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    response = client.post(reverse("admin:mfa_verify"), {"token": code})
    return response.status_code == 302 and response["Location"] == reverse("admin:index")


@pytest.fixture
def staff(db):
    return make_user("ayse", roles=["operator"])


def test_the_totp_secret_in_the_database_is_ciphertext_and_still_signs_in(staff):
    device = confirmed_device(staff)
    hex_key = device.key

    raw = stored_key(device)
    assert raw.startswith("v1:") and hex_key not in raw and len(raw) <= 80
    reloaded = TOTPDevice.objects.get(pk=device.pk)
    assert reloaded.key == hex_key and reloaded.bin_key == bytes.fromhex(hex_key)
    assert signs_in(staff, totp_code(reloaded))
    assert hex_key not in stored_key(device), "saving after a verified code encrypts again"


def test_backup_codes_are_stored_as_keyed_hashes_and_each_works_once(staff):
    confirmed_device(staff)
    codes = services.issue_backup_codes(staff)

    stored = stored_tokens(staff)
    assert len(stored) == len(codes) and not stored & set(codes)
    assert all(len(token) <= 16 and not token.isdigit() for token in stored)
    assert signs_in(staff, codes[0])
    assert len(stored_tokens(staff)) == len(codes) - 1
    device = StaticDevice.objects.get(user=staff)
    device.throttle_reset()
    assert not signs_in(staff, codes[0])


def test_a_stored_hash_typed_as_a_code_is_refused(staff):
    confirmed_device(staff)
    services.issue_backup_codes(staff)
    leaked = next(iter(stored_tokens(staff)))
    assert services.verify_second_factor(staff, leaked) is None
    device = StaticDevice.objects.get(user=staff)
    assert not services.use_backup_code(device, leaked)


def test_a_rotated_key_ring_still_reads_old_secrets_and_reencrypt_moves_them(staff, settings):
    old, new = new_key(), new_key()
    settings.OTP_ENCRYPTION_KEY = old
    device = confirmed_device(staff)
    codes = services.issue_backup_codes(staff)
    old_id = otp_secrets.key_id_of(stored_key(device))

    settings.OTP_ENCRYPTION_KEY = f"{new},{old}"
    assert TOTPDevice.objects.get(pk=device.pk).key == device.key
    out = io.StringIO()
    call_command("reencrypt_otp_secrets", stdout=out)
    assert "TOTP secrets re-encrypted: 1" in out.getvalue()
    assert otp_secrets.key_id_of(stored_key(device)) not in (None, old_id)
    assert signs_in(staff, codes[0]), "codes hashed under the older key work while it stays in the ring"

    settings.OTP_ENCRYPTION_KEY = new
    assert TOTPDevice.objects.get(pk=device.pk).key == device.key
    assert not signs_in(staff, codes[1]), "codes hashed under a key dropped from the ring stop working"


def test_the_data_migration_encrypts_plain_keys_and_hashes_plain_codes(staff):
    device = confirmed_device(staff)
    hex_key = device.key
    static = StaticDevice.objects.create(user=staff, name="backup", confirmed=True)
    with connection.cursor() as cursor:  # as django-otp stored them before
        cursor.execute("UPDATE otp_totp_totpdevice SET key = %s WHERE id = %s", [hex_key, device.pk])
        cursor.execute(
            "INSERT INTO otp_static_statictoken (device_id, token) VALUES (%s, %s)", [static.pk, "1234567890"]
        )

    migration.forwards(django_apps, None)
    migration.forwards(django_apps, None)  # safe to run again

    assert stored_key(device).startswith("v1:") and hex_key not in stored_key(device)
    assert TOTPDevice.objects.get(pk=device.pk).key == hex_key
    assert stored_tokens(staff) == {otp_secrets.hash_backup_code("1234567890")}
    assert signs_in(staff, "1234567890")


@override_settings(DEBUG=False, OTP_ENCRYPTION_KEY="")
def test_without_a_key_outside_debug_it_refuses_to_store_a_secret(staff):
    with pytest.raises(ImproperlyConfigured, match="OTP_ENCRYPTION_KEY"):
        TOTPDevice.objects.create(user=staff, name="authenticator", confirmed=False)
    assert [e.id for e in checks.otp_encryption_key_check(None)] == ["accounts.E001"]


@pytest.mark.parametrize("bad", ["not-base64!!", "c2hvcnQ", "dGVzdC1vbmx5LW90cC1lbmNyeXB0aW9uLWtleS0zMmI,c2hvcnQ"])
def test_a_malformed_key_ring_fails_loudly(bad, settings):
    settings.OTP_ENCRYPTION_KEY = bad
    with pytest.raises(ImproperlyConfigured, match="32 bytes"):
        otp_secrets.key_ring()


def test_a_secret_under_a_key_no_longer_in_the_ring_is_a_clear_error(staff, settings):
    settings.OTP_ENCRYPTION_KEY = new_key()
    device = confirmed_device(staff)
    settings.OTP_ENCRYPTION_KEY = new_key()
    with pytest.raises(ImproperlyConfigured, match="no longer holds"):
        TOTPDevice.objects.get(pk=device.pk)


def test_static_tokens_are_not_readable_through_the_orm_either(staff):
    confirmed_device(staff)
    codes = services.issue_backup_codes(staff)
    assert not set(StaticToken.objects.values_list("token", flat=True)) & set(codes)
