"""The default retention policies (docs/governance.md) and the governance capabilities of the role groups."""

from django.db import migrations


def defaults(apps, schema_editor):
    from apps.governance import registry

    policy = apps.get_model("governance", "RetentionPolicy")
    for name, spec in registry.CLASSES.items():
        policy.objects.using(schema_editor.connection.alias).get_or_create(
            data_class=name,
            defaults={"retention_days": spec.default_days(), "archive_before_delete": spec.archive_by_default,
                      "description": spec.description},
        )  # fmt: skip


def sync(apps, schema_editor):
    from apps.accounts.roles import sync_role_groups

    sync_role_groups(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("accounts", "0006_auditor_tenantless_entries"),
    ]

    operations = [
        migrations.RunPython(defaults, migrations.RunPython.noop),
        migrations.RunPython(sync, migrations.RunPython.noop),
    ]
