"""Re-apply the capability matrix: admins and auditors get the security capabilities of issue 14."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("security", "0001_initial"), ("accounts", "0006_auditor_tenantless_entries")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
