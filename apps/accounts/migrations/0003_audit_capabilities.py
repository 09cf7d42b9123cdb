"""Re-apply the capability matrix: admins and auditors may read the audit trail."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_role_groups"), ("audit", "0003_checkpoints")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
