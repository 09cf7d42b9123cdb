"""Who may see which tenant, and querysets cut down to it. The only place django-guardian is read."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Tenant, TenantGroupObjectPermission, TenantUserObjectPermission

ACCESS_TENANT = "access_tenant"


def _tenant_grant(user, tenant_ref) -> Q:
    """A condition true when `user`, directly or through a group, holds access_tenant on `tenant_ref`."""
    direct = TenantUserObjectPermission.objects.filter(
        user_id=user.pk,
        permission__codename=ACCESS_TENANT,
        permission__content_type__app_label="accounts",
        content_object_id=tenant_ref,
    )
    via_group = TenantGroupObjectPermission.objects.filter(
        group__user=user.pk,
        permission__codename=ACCESS_TENANT,
        permission__content_type__app_label="accounts",
        content_object_id=tenant_ref,
    )
    return Q(Exists(direct)) | Q(Exists(via_group))


def sees_all_tenants(user) -> bool:
    return bool(user and user.is_active and user.is_superuser)


def tenants_for(user) -> QuerySet[Tenant]:
    """The tenants `user` may work on: all for a superuser, the granted ones for everybody else."""
    if not user or not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    if sees_all_tenants(user):
        return Tenant.objects.all()
    return Tenant.objects.filter(_tenant_grant(user, OuterRef("pk")))


def scope_to_tenants(queryset: QuerySet, user, *, tenant_field: str = "tenant") -> QuerySet:
    """Filter `queryset` to rows whose `tenant_field` is a tenant `user` may work on."""
    if not user or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if sees_all_tenants(user):
        return queryset
    return queryset.filter(_tenant_grant(user, OuterRef(f"{tenant_field}_id")))


def can_access_tenant(user, tenant) -> bool:
    if tenant is None:
        return False
    return tenants_for(user).filter(pk=getattr(tenant, "pk", tenant)).exists()


def users_visible_to(user):
    """Users `user` may see in the admin: all for a superuser; otherwise those sharing a tenant, and themself."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.all()
    if sees_all_tenants(user):
        return users
    # A grant of the listed user on a tenant that `user` is granted too: EXISTS inside EXISTS, no id list.
    shares_tenant = TenantUserObjectPermission.objects.filter(
        user_id=OuterRef("pk"),
        permission__codename=ACCESS_TENANT,
        permission__content_type__app_label="accounts",
    ).filter(_tenant_grant(user, OuterRef("content_object_id")))
    return users.filter(Q(pk=user.pk) | Q(Exists(shares_tenant)))


def tenant_ids_of(user) -> list[int]:
    """Ids of the tenants granted directly to `user` (not through groups): what the admin form edits."""
    return list(
        TenantUserObjectPermission.objects.filter(user_id=user.pk, permission__codename=ACCESS_TENANT)
        .values_list("content_object_id", flat=True)
        .order_by("content_object_id")
    )


def tenant_permissions_of(kind: str, holder_id, tenant) -> set[str]:
    """Codenames a user or group holds directly on `tenant` (for auditing guardian's permission pages)."""
    model = TenantUserObjectPermission if kind == "user" else TenantGroupObjectPermission
    holder = {"user_id": holder_id} if kind == "user" else {"group_id": holder_id}
    return set(model.objects.filter(content_object=tenant, **holder).values_list("permission__codename", flat=True))


# ---------------------------------------------------------------- where a signed-in user belongs
PANEL_CAPABILITY = "reporting.view_report"
_MANAGING_VERBS = ("add", "change", "delete")


def may_use_panel(user) -> bool:
    return bool(user and user.is_active and user.has_perm(PANEL_CAPABILITY))


def may_use_admin(user) -> bool:
    """Staff holding any capability the console has a page for (the panel's own capability has none there)."""
    if not (user and user.is_active and user.is_staff):
        return False
    return user.is_superuser or bool(user.get_all_permissions() - {PANEL_CAPABILITY})


def manages_in_admin(user) -> bool:
    """Whether `user` may change something in the console (outside their own report exports)."""
    if user.is_superuser:
        return True
    for perm in user.get_all_permissions():
        app_label, _, codename = perm.partition(".")
        if app_label != "reporting" and codename.split("_", 1)[0] in _MANAGING_VERBS:
            return True
    return False


def landing_page_for(user) -> str:
    """ "panel" for who reads reports and changes nothing in the console, else "admin" (both factors given)."""
    if may_use_panel(user) and not manages_in_admin(user):
        return "panel"
    return "admin"
