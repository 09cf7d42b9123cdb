"""Writes to users, tenants, roles and MFA devices."""

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit import services as audit

from .capabilities import ROLES
from .models import Tenant

ACCESS_TENANT_PERM = "accounts.access_tenant"
BACKUP_DEVICE_NAME = "backup"
TOTP_DEVICE_NAME = "authenticator"


# ---------------------------------------------------------------- tenants and roles
def grant_tenant_access(user, tenant: Tenant, *, actor=None) -> None:
    assign_perm(ACCESS_TENANT_PERM, user, tenant)


def revoke_tenant_access(user, tenant: Tenant, *, actor=None) -> None:
    remove_perm(ACCESS_TENANT_PERM, user, tenant)


class GrantRefused(PermissionDenied):
    """The actor tried to give a role or a tenant it may not give (see selectors.grantable_roles)."""


def set_user_tenants(user, tenants, *, actor=None) -> None:
    """Make `tenants` exactly the tenants granted to `user` directly.

    With an `actor` who is not a superuser, only tenants the actor works on may be added or removed; grants
    on the others are kept as they are, and adding one of them raises GrantRefused.
    """
    from .selectors import tenant_ids_of, tenants_for

    wanted = {t.pk: t for t in tenants}
    current = set(tenant_ids_of(user))
    if actor is not None and not actor.is_superuser:
        own = set(tenants_for(actor).values_list("pk", flat=True))
        if set(wanted) - current - own:
            raise GrantRefused("Only tenants you work on can be granted.")
        wanted.update({t.pk: t for t in Tenant.objects.filter(pk__in=current - own)})
    with transaction.atomic():
        for tenant in Tenant.objects.filter(pk__in=current - set(wanted)):
            revoke_tenant_access(user, tenant, actor=actor)
        for pk in set(wanted) - current:
            grant_tenant_access(user, wanted[pk], actor=actor)


def set_user_roles(user, roles, *, actor=None) -> None:
    """Make `roles` (role names from the capability matrix) exactly the user's role groups.

    With an `actor`, only roles it may give (selectors.grantable_roles) may be added or removed; the user's
    other roles are kept, and adding one of them raises GrantRefused.
    """
    from .selectors import grantable_roles

    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    wanted = set(roles)
    if actor is not None:
        allowed = set(grantable_roles(actor))
        current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if wanted - current - allowed:
            raise GrantRefused("Only roles whose capabilities you hold can be granted.")
        wanted |= current - allowed
    user.groups.set(Group.objects.filter(name__in=wanted))


def note_password_set(user, *, actor, via: str) -> None:
    """Record that `user`'s password was just set (audit entry and the `password_set_by_other` flag); call
    inside the transaction that saved it, after saving.

    When `actor` is somebody else (an admin's reset, or the password an admin gave a new user) the entry is
    `accounts.password_set_by_other` and the flag goes up; when the user sets their own, it comes down. The
    flag is the hook for MFA enrolment: whoever set the password knows it, so they must not be the one who
    enrols the account's first authenticator.
    """
    by_other = actor is None or getattr(actor, "pk", None) != user.pk
    action = "accounts.password_set_by_other" if by_other else "accounts.password_changed"
    type(user).objects.filter(pk=user.pk).update(password_set_by_other=by_other)
    user.password_set_by_other = by_other
    audit.record(actor, action, user, {"via": via, "usable": user.has_usable_password()})


# ---------------------------------------------------------------- MFA
def start_totp_enrolment(user, *, device_id=None) -> TOTPDevice:
    """Return the unconfirmed authenticator device `device_id` of `user`, or a new one with a fresh secret.

    A new one replaces the user's other unconfirmed authenticators: a secret shown to an earlier, abandoned
    sign-in (perhaps somebody else's, with a stolen password) must not become the one the user confirms.
    """
    waiting = TOTPDevice.objects.filter(user=user, confirmed=False, name=TOTP_DEVICE_NAME)
    device = waiting.filter(pk=device_id).first() if device_id else None
    if device is None:
        with transaction.atomic():
            waiting.delete()
            device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def confirm_totp_device(device: TOTPDevice, token: str) -> bool:
    """Confirm the device when `token` is a valid current code for it; returns whether it was."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(token):
            return False
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return True


def issue_backup_codes(user, *, count=None) -> list[str]:
    """Replace the user's single-use backup codes with fresh ones and return them (shown once)."""
    count = count or settings.MFA_BACKUP_CODE_COUNT
    codes = [f"{secrets.randbelow(10**10):010d}" for _ in range(count)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def has_confirmed_totp(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def verify_second_factor(user, token: str, *, allow_backup_codes=True):
    """Check `token` against the user's confirmed devices; returns the device that accepted it, or None.

    A backup code is consumed by django-otp's static device when it matches.
    """
    token = (token or "").replace(" ", "").strip()
    if not token.isdigit():
        return None
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    if allow_backup_codes:
        devices += list(StaticDevice.objects.filter(user=user, confirmed=True))
    with transaction.atomic():
        for device in devices:
            locked = type(device).objects.select_for_update().get(pk=device.pk)
            if locked.verify_token(token):
                return locked
    return None


def unlock_sign_in(user, *, actor=None) -> int:
    """Lift the wrong-code lockout of every second factor of `user` (django-otp throttles a device after
    failed codes, for longer after each); audited. Returns how many devices were locked out."""
    with transaction.atomic():
        devices = [
            *TOTPDevice.objects.select_for_update().filter(user=user),
            *StaticDevice.objects.select_for_update().filter(user=user),
        ]
        locked_out = [d for d in devices if d.throttling_failure_count]
        for device in locked_out:
            device.throttle_reset(commit=True)
        audit.record(actor, "accounts.sign_in_unlocked", user, {"devices": [d.persistent_id for d in locked_out]})
    return len(locked_out)


# ---------------------------------------------------------------- sign-in events
def note_sign_in_event(action: str, *, user=None, **details) -> None:
    """Audit one step of signing in or out (auth.login, auth.login_failed, auth.mfa_enrolled, ...).

    `user` is who the step is about (the claimed user of a failed code, say); details hold no secrets.
    """
    actor = user if user is not None else ("anonymous", "")
    if user is not None and not user.is_authenticated:
        actor = ("user", str(user.pk))
    with transaction.atomic():
        audit.record(actor, action, user, details)


def note_permission_change(actor, tenant, *, kind, holder_id, before, after) -> None:
    """Audit a change of object permissions on a tenant made outside these services (guardian's admin pages)."""
    with transaction.atomic():
        audit.record(
            actor,
            "tenant.permissions.changed",
            tenant,
            {"holder": f"{kind}:{holder_id}", "added": sorted(after - before), "removed": sorted(before - after)},
        )


# ---------------------------------------------------------------- API tokens
def note_token_issued(user, token) -> None:
    """Audit a new API token (knox AuthToken `token`); call inside the transaction that created it.

    The entry names the token by its key prefix (knox's `token_key`, stored in clear anyway), never the token."""
    expiry = token.expiry.isoformat() if token.expiry else None
    audit.record(user, "auth.token_issued", None, {"token_key": token.token_key, "expiry": expiry},
                 object_type="knox.authtoken", object_id=token.token_key)  # fmt: skip


def note_token_revoked(user, token_key: str) -> None:
    audit.record(user, "auth.token_revoked", None, {"token_key": token_key},
                 object_type="knox.authtoken", object_id=token_key)  # fmt: skip


def note_tokens_revoked_all(user, *, token_keys: list[str]) -> None:
    audit.record(user, "auth.tokens_revoked_all", None, {"token_keys": sorted(token_keys), "count": len(token_keys)},
                 object_type="knox.authtoken")  # fmt: skip
