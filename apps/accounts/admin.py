from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.admin import WebAuthnCredentialAdmin
from django_otp_webauthn.models import WebAuthnCredential
from guardian.admin import GuardedModelAdminMixin

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.core.incident_lock import OP_UNLOCK_ACCOUNT

from . import mfa_session, selectors, services
from .capabilities import ROLES
from .models import Tenant, User

# Changing any of these changes what a user may do, so it needs a fresh code (step-up).
ROLE_FIELDS = ("roles", "tenants", "is_staff", "is_superuser")


class UserRolesForm(forms.ModelForm):
    """The user form's roles and tenants, with a fresh TOTP code required when roles change."""

    roles = forms.MultipleChoiceField(
        label=_("Roles"), choices=[(r, r) for r in ROLES], required=False, widget=forms.CheckboxSelectMultiple
    )
    tenants = forms.ModelMultipleChoiceField(
        label=_("Tenants"), queryset=Tenant.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    confirm_code = forms.CharField(
        label=_("Your authenticator code"),
        required=False,
        max_length=8,
        help_text=_("Needed when roles, staff or superuser status change: a fresh code from your own device."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    request = None  # set by the admin

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "tenants" in self.fields:
            # Only the editor's own tenants are offered, so a tenant admin cannot hand out another tenant.
            self.fields["tenants"].queryset = selectors.tenants_for(self.request.user)
            if self.instance.pk:
                self.fields["tenants"].initial = selectors.tenant_ids_of(self.instance)
        if "roles" in self.fields:
            # Only roles whose every capability the editor holds: a grant never passes on more than they have.
            self.fields["roles"].choices = [(r, r) for r in selectors.grantable_roles(self.request.user)]
        if "roles" in self.fields and self.instance.pk:
            self.fields["roles"].initial = list(
                self.instance.groups.filter(name__in=ROLES).values_list("name", flat=True)
            )

    def roles_changed(self) -> bool:
        if not self.instance.pk:
            return bool(self.cleaned_data.get("roles")) or self.cleaned_data.get("is_superuser", False)
        return any(name in self.changed_data for name in ROLE_FIELDS if name in self.fields)

    def clean(self):
        cleaned = super().clean()
        editor = self.request.user
        if not self.instance.pk and "tenants" in self.fields and not editor.is_superuser and not cleaned.get("tenants"):
            # A user without a tenant is out of a tenant admin's reach (selectors.users_visible_to).
            self.add_error("tenants", _("Choose at least one of your tenants for the new user."))
        if self.roles_changed() and not mfa_session.stepped_up_recently(self.request):
            code = (cleaned.get("confirm_code") or "").strip()
            if not code or not services.verify_second_factor(self.request.user, code, allow_backup_codes=False):
                self.add_error("confirm_code", _("Changing roles needs a fresh, valid code from your authenticator."))
            else:
                mfa_session.mark_stepped_up(self.request)
        return cleaned


class UserChangeRolesForm(UserRolesForm, DjangoUserAdmin.form):
    pass


class UserCreateRolesForm(UserRolesForm, DjangoUserAdmin.add_form):
    pass


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    form = UserChangeRolesForm
    add_form = UserCreateRolesForm
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("username", "first_name", "last_name", "email")
    readonly_fields = ("last_login", "date_joined")
    actions = ["unlock_sign_in"]
    # Still offered while the incident lock is on (when INCIDENT_LOCK_EMERGENCY_OPS lists it).
    emergency_actions = {"unlock_sign_in": OP_UNLOCK_ACCOUNT}

    def get_queryset(self, request):
        # A tenant admin sees only users whose every tenant is theirs; anybody else is "doesn't exist".
        return selectors.users_visible_to(request.user).prefetch_related("groups")

    # Not "change": that permission is withdrawn while the incident lock is on, and this is an emergency op.
    def has_unlock_permission(self, request):
        return request.user.has_perm("accounts.change_user")

    @admin.action(permissions=["unlock"], description=_("Unlock sign-in (clear wrong-code lockouts)"))
    def unlock_sign_in(self, request, queryset):
        # As for changes: only users the requester may manage (never a superuser, unless they are one).
        manageable = [user for user in queryset if selectors.can_manage_user(request.user, user)]
        unlocked = [user for user in manageable if services.unlock_sign_in(user, actor=request.user)]
        if unlocked:
            names = ", ".join(user.get_username() for user in unlocked)
            messages.success(request, _("Sign-in unlocked for: %(names)s.") % {"names": names})
        else:
            messages.info(request, _("None of the selected users was locked out."))

    # A tenant admin sees a superuser who shares their tenants, or a user holding capabilities they lack,
    # but must not reset their password, change or delete them (selectors.can_manage_user). The password
    # page (user_change_password) asks has_change_permission too.
    def has_change_permission(self, request, obj=None):
        if obj is not None and not selectors.can_manage_user(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not selectors.can_manage_user(request.user, obj):
            return False
        return super().has_delete_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        # One transaction for the new password, its admin.change entry and the password-set note (log_change).
        with transaction.atomic():
            request._setting_password = True
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        super().log_change(request, obj, message)
        if getattr(request, "_setting_password", False):
            services.note_password_set(obj, actor=request.user, via="admin.password")

    def get_fieldsets(self, request, obj=None):
        access = ["roles", "tenants"] if request.user.has_perm("accounts.assign_roles") else []
        flags = ["is_active", "is_staff"] + (["is_superuser"] if request.user.is_superuser else [])
        if obj is None:
            return (
                (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
                (_("Access"), {"fields": [*flags, *access, "confirm_code"]}),
            )
        return (
            (None, {"fields": ("username", "password")}),
            (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
            (_("Access"), {"fields": [*flags, *access, "confirm_code"]}),
            (_("Important dates"), {"fields": ("last_login", "date_joined")}),
        )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Whoever sets another person's password (or e-mail, where the enrolment code goes) must not be able
        # to enrol an authenticator for them (issue 11).
        if not change and obj.has_usable_password():
            services.note_password_set(obj, actor=request.user, via="admin.add")
        elif change and "email" in form.changed_data and obj.pk != request.user.pk:
            # The form's initial data is the address before this change: no second read of the row.
            previous_email = form.initial.get("email") or ""
            services.note_set_by_other(obj, actor=request.user, what="email", previous_email=previous_email)
        # With the editor as actor, the services refuse roles and tenants the editor may not give, and keep
        # the grants the editor cannot see as they were.
        if "roles" in form.cleaned_data and request.user.has_perm("accounts.assign_roles"):
            services.set_user_roles(obj, form.cleaned_data["roles"], actor=request.user)
        if "tenants" in form.cleaned_data and request.user.has_perm("accounts.assign_roles"):
            services.set_user_tenants(obj, form.cleaned_data["tenants"], actor=request.user)

    def save_related(self, request, form, formsets, change):
        # Groups are set from "roles" in save_model; the form has no groups field to save.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(Tenant)
class TenantAdmin(AuditedAdminMixin, GuardedModelAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")
    list_filter = ("is_active",)
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return selectors.tenants_for(request.user)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        return self._audited_grant(request, object_pk, "user", user_id, super().obj_perms_manage_user_view)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        return self._audited_grant(request, object_pk, "group", group_id, super().obj_perms_manage_group_view)

    def _audited_grant(self, request, object_pk, kind, holder_id, view):
        """guardian's permission pages write no log entry; record what they changed on the tenant."""
        tenant = Tenant.objects.filter(pk=object_pk).first()
        before = selectors.tenant_permissions_of(kind, holder_id, tenant) if tenant else set()
        response = view(request, object_pk, holder_id)
        if request.method == "POST" and tenant is not None:
            after = selectors.tenant_permissions_of(kind, holder_id, tenant)
            if after != before:
                services.note_permission_change(
                    request.user, tenant, kind=kind, holder_id=holder_id, before=before, after=after
                )
        return response


admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(DjangoGroupAdmin):
    """Roles are read-only here: their capabilities come from apps/accounts/capabilities.py."""

    fields = ("name", "capabilities")
    readonly_fields = ("name", "capabilities")

    # Django's own label for Group.permissions is "izinler" in Turkish, which capfirst turns into "Izinler".
    @admin.display(description=_("Permissions"))
    def capabilities(self, obj):
        return format_html_join(mark_safe("<br>"), "{}", ((str(p),) for p in obj.permissions.all()))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StepUpDeviceMixin:
    """Removing or rewriting a second factor needs a fresh TOTP code; bulk delete is off so every removal asks.

    Saving a device counts too: unticking "confirmed" or moving a device to another user removes it from its
    owner as surely as deleting it, and adding one hands somebody a second factor for another account.
    """

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _ask_for_step_up(self, request):
        messages.info(request, _("Changing or removing a device needs a fresh code first."))
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('admin:mfa_step_up')}?{query}")

    def delete_view(self, request, object_id, extra_context=None):
        if not mfa_session.stepped_up_recently(request):
            return self._ask_for_step_up(request)
        return super().delete_view(request, object_id, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and not mfa_session.stepped_up_recently(request):
            return self._ask_for_step_up(request)
        return super().changeform_view(request, object_id, form_url, extra_context)


for _model, _admin_class in ((TOTPDevice, TOTPDeviceAdmin), (StaticDevice, StaticDeviceAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin_class.__name__, (AuditedAdminMixin, StepUpDeviceMixin, _admin_class), {}))

# issue 14: django-otp-webauthn ships its admin class without registering it; its passkeys are second factors
# like the others, so the same step-up and owner scoping apply (registering happens on the passkeys page).
admin.site.register(
    WebAuthnCredential,
    type("WebAuthnCredentialAdmin", (AuditedAdminMixin, StepUpDeviceMixin, WebAuthnCredentialAdmin), {}),
)
