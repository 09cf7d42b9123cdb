"""Re-apply the capability matrix: tenant admins and auditors see the SLA figures of their tenants."""

from django.db import migrations

from apps.accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # After every app whose permissions the matrix names: the sync sets each group's permissions to exactly
    # those that exist in the migration state at this point.
    dependencies = [
        ("observability", "0001_initial"),
        ("accounts", "0006_auditor_tenantless_entries"),
        ("audit", "0005_tenantless_entries_capability"),
        ("catalog", "0001_initial"),
        ("jobs", "0002_job_event_seq"),
        ("billing", "0001_initial"),
        ("events", "0001_initial"),
        ("erp", "0003_error_class_refused"),
        ("reporting", "0008_export_format_csv_excel"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
