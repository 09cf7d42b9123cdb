"""Re-apply the capability matrix: admins manage ERP profiles and the DLQ; auditors read them."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("erp", "0001_initial"), ("events", "0001_initial"), ("accounts", "0003_audit_capabilities")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
