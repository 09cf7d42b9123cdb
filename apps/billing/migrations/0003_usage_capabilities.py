"""Re-apply the capability matrix: admins and auditors read usage, cost reports and pricing versions."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_usage_pricing"), ("accounts", "0003_audit_capabilities")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
