from django.db import migrations, models

from apps.audit import db_guards


def reinstall(apps, schema_editor):
    # The sealing UPDATE must leave the new column alone too (it is part of the content).
    db_guards.remove(schema_editor.connection, tables=("audit_logs",))
    db_guards.install(schema_editor.connection, tables=("audit_logs",))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0007_subject_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="payload_canonical",
            field=models.TextField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(reinstall, migrations.RunPython.noop),
    ]
