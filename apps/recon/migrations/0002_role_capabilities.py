"""Re-apply the capability matrix: analysts read breaks; operators and admins work them (issue 18)."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("recon", "0001_initial"),
        ("accounts", "0006_auditor_tenantless_entries"),
        ("reporting", "0008_export_format_csv_excel"),
        ("erp", "0003_error_class_refused"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
