"""Re-apply the capability matrix: auditors may read audit entries of no tenant (audit.view_tenantless_entries)."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_user_password_set_by_other"), ("audit", "0005_tenantless_entries_capability")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
