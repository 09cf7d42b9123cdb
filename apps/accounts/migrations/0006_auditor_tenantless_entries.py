"""Re-apply the capability matrix: auditors may read audit entries of no tenant (audit.view_tenantless_entries)."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_encrypt_totp_keys_and_hash_backup_codes"),
        ("audit", "0005_tenantless_entries_capability"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
