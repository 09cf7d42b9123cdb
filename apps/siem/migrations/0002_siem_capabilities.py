"""Re-apply the capability matrix: auditors see the SIEM feed (records waiting, destinations)."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("siem", "0001_initial"), ("accounts", "0006_auditor_tenantless_entries")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
