"""Install the triggers that make audit_checkpoints append-only (apps/audit/db_guards.py): a deleted
checkpoint would otherwise let a cut-off tail go unseen."""

from django.db import migrations

from apps.audit import db_guards


def install(apps, schema_editor):
    db_guards.install(schema_editor.connection, tables=("audit_checkpoints",))


def remove(apps, schema_editor):
    db_guards.remove(schema_editor.connection, tables=("audit_checkpoints",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_checkpoints")]

    operations = [migrations.RunPython(install, remove)]
