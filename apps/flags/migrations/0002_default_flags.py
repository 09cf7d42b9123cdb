"""Seed 001's default flags; `bulk_operations` is on for admins (and superusers) only."""

from django.db import migrations

DEFAULTS = [
    ("enterprise_audit", "Enterprise audit", "Enable detailed audit logging", "enabled", []),
    ("enterprise_security", "Enterprise security", "Enable advanced security features", "enabled", []),
    ("data_governance", "Data governance", "Enable GDPR compliance features", "enabled", []),
    ("advanced_analytics", "Advanced analytics", "Enable advanced analytics dashboard", "disabled", []),
    (
        "bulk_operations",
        "Bulk operations",
        "Enable bulk data operations (the admin's bulk delete)",
        "enabled",
        ["admin"],
    ),
]


def create(apps, schema_editor):
    flag_model = apps.get_model("flags", "FeatureFlag")
    group_model = apps.get_model("auth", "Group")
    for key, name, description, state, roles in DEFAULTS:
        # Off for everybody when disabled; on for everybody unless it targets roles.
        everyone = False if state == "disabled" else (None if roles else True)
        flag, _ = flag_model.objects.get_or_create(
            name=key,
            defaults={"display_name": name, "description": description, "state": state, "everyone": everyone,
                      "superusers": True},
        )  # fmt: skip
        if roles:
            groups = []
            for role in roles:
                group, _ = group_model.objects.get_or_create(name=role)
                groups.append(group)
            flag.groups.set(groups)


def remove(apps, schema_editor):
    apps.get_model("flags", "FeatureFlag").objects.filter(name__in=[d[0] for d in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("flags", "0001_initial"), ("accounts", "0002_role_groups")]

    operations = [migrations.RunPython(create, remove)]
