"""Drop django-waffle's own flag tables: WAFFLE_FLAG_MODEL swaps them for flags.FeatureFlag, yet waffle's
migrations create them anyway, and their foreign keys to auth_group and the user table make PostgreSQL refuse
the TRUNCATE of a database flush (a transactional test's teardown, `manage.py flush`)."""

from django.db import migrations

TABLES = ("waffle_flag_groups", "waffle_flag_users", "waffle_flag")


def drop_waffle_flag_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    cascade = " CASCADE" if schema_editor.connection.vendor == "postgresql" else ""
    for table in TABLES:
        if table in existing:
            schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(table)}{cascade}")


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0003_flag_capabilities"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]

    # Not reversible into the old state on purpose: nothing reads the swapped-out tables.
    operations = [migrations.RunPython(drop_waffle_flag_tables, migrations.RunPython.noop)]
