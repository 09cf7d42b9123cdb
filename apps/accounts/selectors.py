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


def granted_tenant_condition(user, *, tenant_field: str = "tenant") -> Q:
    """The condition scope_to_tenants filters by (user not a superuser), to combine with others in one WHERE:
    true when the row's `tenant_field` is a tenant granted to `user`."""
    return _tenant_grant(user, OuterRef(f"{tenant_field}_id"))


def can_access_tenant(user, tenant) -> bool:
    if tenant is None:
        return False
    return tenants_for(user).filter(pk=getattr(tenant, "pk", tenant)).exists()


def _tenant_grants_of_listed_user(outer_pk="pk"):
    """(direct, via group) access_tenant grants of the user in the enclosing query (for EXISTS subqueries)."""
    direct = TenantUserObjectPermission.objects.filter(
        user_id=OuterRef(outer_pk),
        permission__codename=ACCESS_TENANT,
        permission__content_type__app_label="accounts",
    )
    via_group = TenantGroupObjectPermission.objects.filter(
        group__user=OuterRef(outer_pk),
        permission__codename=ACCESS_TENANT,
        permission__content_type__app_label="accounts",
    )
    return direct, via_group


def users_visible_to(user):
    """Users `user` may see in the admin: all for a superuser; otherwise themself, and the users who hold at
    least one tenant and whose every tenant (granted directly or through a group) is one `user` works on.

    A user who also works on a tenant `user` cannot see is out of reach: managing them (a new role, a new
    password) would reach into that other tenant. A user without any tenant is out of reach too: nothing ties
    them to this tenant admin (they may be an auditor of tenant-less entries, or another tenant's newcomer).
    """
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.all()
    if not user or not user.is_authenticated or not user.is_active:
        return users.none()
    if sees_all_tenants(user):
        return users
    direct, via_group = _tenant_grants_of_listed_user()
    # EXISTS inside EXISTS, no id list: a grant of the listed user on a tenant `user` lacks.
    foreign = _tenant_grant(user, OuterRef("content_object_id"))
    has_tenant = Q(Exists(direct)) | Q(Exists(via_group))
    has_foreign_tenant = Q(Exists(direct.exclude(foreign))) | Q(Exists(via_group.exclude(foreign)))
    return users.filter(Q(pk=user.pk) | (has_tenant & ~has_foreign_tenant))


def can_manage_user(actor, target) -> bool:
    """Whether `actor` may change, delete or set the password of `target` (the admin's per-object check).

    A superuser may manage anybody. Anybody else only a non-superuser they can see (users_visible_to) whose
    every capability they hold themselves: taking over a user (a new password) must not gain them anything.
    """
    if sees_all_tenants(actor):
        return True
    if target is None or target.is_superuser or not actor or not actor.is_authenticated:
        return False
    if target.pk != actor.pk and not users_visible_to(actor).filter(pk=target.pk).exists():
        return False
    return capabilities_of(target) <= capabilities_of(actor)


def capabilities_of(user) -> set[str]:
    """Every global capability ("app_label.codename") of `user`, from roles and direct permissions.

    Read from the tables rather than `get_all_permissions()`, which is empty for an inactive user: one
    reactivation later they hold it all again.
    """
    from django.contrib.auth.models import Permission

    held = Permission.objects.filter(Q(group__user=user.pk) | Q(user=user.pk))
    return {f"{app}.{code}" for app, code in held.values_list("content_type__app_label", "codename").distinct()}


def grantable_roles(actor) -> list[str]:
    """Roles `actor` may give: every role for a superuser; otherwise the roles whose every capability `actor`
    holds itself (its own roles, and the smaller ones), so a grant never passes on more than the actor has."""
    from django.contrib.auth.models import Group

    from .capabilities import ROLES

    if sees_all_tenants(actor):
        return list(ROLES)
    own = capabilities_of(actor)
    grantable = []
    for group in Group.objects.filter(name__in=ROLES).prefetch_related("permissions__content_type"):
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        if held <= own:
            grantable.append(group.name)
    return [role for role in ROLES if role in grantable]


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
