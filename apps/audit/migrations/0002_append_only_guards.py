"""Install the triggers that make audit_logs append-only (apps/audit/db_guards.py)."""

from django.db import migrations

from apps.audit import db_guards


def install(apps, schema_editor):
    db_guards.install(schema_editor.connection, tables=("audit_logs",))


def remove(apps, schema_editor):
    db_guards.remove(schema_editor.connection, tables=("audit_logs",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
