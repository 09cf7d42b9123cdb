"""Re-apply the capability matrix: admins and auditors may list the feature flags."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("flags", "0002_default_flags"), ("security", "0002_security_capabilities")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
