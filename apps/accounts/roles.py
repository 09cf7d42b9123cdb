"""Turn the capability matrix into role groups; called by migrations and `manage.py sync_roles`."""

from django.contrib.auth.management import create_permissions

from .capabilities import ROLE_CAPABILITIES


def sync_role_groups(apps, *, using="default") -> dict[str, int]:
    """Create each role's group and set its permissions to exactly the matrix's; returns counts per role.

    `apps` is the migration state's registry (or `django.apps.apps`). Permissions are created first,
    because Django only creates them after the last migration has run.
    """
    for app_config in apps.get_app_configs():
        # Migration-state app configs have no models_module, which create_permissions takes as "skip".
        had_module = getattr(app_config, "models_module", None)
        app_config.models_module = had_module or True
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
        app_config.models_module = had_module
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    # One read of every permission instead of a query per capability: twelve migrations call this.
    permission_ids = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in permission_model.objects.using(using).values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    counts = {}
    for role, capabilities in ROLE_CAPABILITIES.items():
        group, _ = group_model.objects.using(using).get_or_create(name=role)
        wanted = [permission_ids[c] for c in capabilities if c in permission_ids]
        group.permissions.set(wanted)
        counts[role] = len(wanted)
    return counts


def missing_capabilities(apps) -> list[str]:
    """Capabilities named in the matrix that no installed permission matches (a typo or a missing app)."""
    permission_model = apps.get_model("auth", "Permission")
    existing = {
        f"{app}.{code}" for app, code in permission_model.objects.values_list("content_type__app_label", "codename")
    }
    return sorted({c for caps in ROLE_CAPABILITIES.values() for c in caps} - existing)
