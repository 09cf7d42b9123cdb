from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class Tenant(models.Model):
    """A customer organisation; every business record belongs to exactly one."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        permissions = [("access_tenant", _("Can work on the tenant's data"))]

    def __str__(self):
        return self.name


class User(AbstractUser):
    """A person who signs in; the tenants they may work on are object permissions on Tenant."""

    # Set when someone else set this user's password or e-mail: whoever did knows the password, so enrolling
    # an authenticator first needs a code sent to the owner's mailbox (apps.accounts.views.MfaOwnerProofView).
    mfa_owner_proof_required = models.BooleanField(
        _("enrolment needs the owner's e-mail code"),
        default=False,
        help_text=_("Set when another person set the password or e-mail; cleared when the owner enrols."),
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [("assign_roles", _("Can change a user's roles and tenants"))]


class TenantUserObjectPermission(UserObjectPermissionBase):
    """A user's permission on one tenant (django-guardian direct foreign key, so scoping can use Exists)."""

    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("tenant permission of a user")


class TenantGroupObjectPermission(GroupObjectPermissionBase):
    """A group's permission on one tenant (django-guardian direct foreign key)."""

    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = _("tenant permission of a group")
