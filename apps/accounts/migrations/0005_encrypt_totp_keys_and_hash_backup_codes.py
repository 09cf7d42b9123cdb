"""Encrypt the TOTP keys and hash the backup codes already in the database (issue 11).

Historical models have django-otp's plain CharFields, so values are read and written as stored. Backup codes
cannot be un-hashed: going back decrypts the TOTP keys and leaves the codes hashed (issue new ones).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts import otp_secrets

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for pk, key in TOTPDevice.objects.values_list("pk", "key").iterator():
        if key and not otp_secrets.is_encrypted(key):
            TOTPDevice.objects.filter(pk=pk).update(key=otp_secrets.encrypt_totp_key(key))
    for pk, token in StaticToken.objects.values_list("pk", "token").iterator():
        if token and not otp_secrets.is_hashed_code(token):
            StaticToken.objects.filter(pk=pk).update(token=otp_secrets.hash_backup_code(token))


def backwards(apps, schema_editor):
    from apps.accounts import otp_secrets

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    for pk, key in TOTPDevice.objects.values_list("pk", "key").iterator():
        if key and otp_secrets.is_encrypted(key):
            TOTPDevice.objects.filter(pk=pk).update(key=otp_secrets.decrypt_totp_key(key))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_mfa_owner_proof_required"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
