"""Writes to users, tenants, roles and MFA devices."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit import services as audit

from . import otp_secrets
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
    """Record that `user`'s password was just set; call inside the transaction that saved it, after saving.

    When `actor` is somebody else (an admin's reset, or the password an admin gave a new user) the account
    needs its owner's proof before an authenticator is enrolled (`note_set_by_other`, which audits it as
    `accounts.set_by_other`); the user setting their own writes `accounts.password_changed`.
    """
    if actor is None or getattr(actor, "pk", None) != user.pk:
        note_set_by_other(user, actor=actor, what="password", via=via)
        return
    audit.record(actor, "accounts.password_changed", user, {"via": via, "usable": user.has_usable_password()})


# ---------------------------------------------------------------- MFA
def start_totp_enrolment(user) -> TOTPDevice:
    """Return the pending (unconfirmed) authenticator of `user`, or a new one with a fresh secret.

    The pending secret stays the same across sign-ins until it is confirmed or `restart_totp_enrolment`
    replaces it, so an app that scanned it on an earlier, unfinished attempt keeps working. A secret somebody
    else may have seen is handled where that can happen: `note_set_by_other` discards pending secrets, and
    the enrolment page says when the secret was made and offers to start over.
    """
    waiting = TOTPDevice.objects.filter(user=user, confirmed=False, name=TOTP_DEVICE_NAME).order_by("pk")
    device = waiting.last()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def restart_totp_enrolment(user) -> TOTPDevice:
    """Discard every pending authenticator of `user` and return a new one with a fresh secret."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
        audit.record(user, "auth.mfa_enrolment_restarted", user, {"device": device.persistent_id})
    return device


def confirm_totp_device(device: TOTPDevice, token: str) -> bool:
    """Confirm the device when `token` is a valid current code for it; returns whether it was.

    Confirming is the owner's enrolment, so it also clears `mfa_owner_proof_required`; the caller has
    checked the owner's e-mail code when that flag was set.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(token):
            return False
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        get_user_model().objects.filter(pk=device.user_id).update(mfa_owner_proof_required=False)
    return True


def issue_backup_codes(user, *, count=None) -> list[str]:
    """Replace the user's single-use backup codes with fresh ones and return them (shown once, stored hashed)."""
    count = count or settings.MFA_BACKUP_CODE_COUNT
    codes = [f"{secrets.randbelow(10**10):010d}" for _ in range(count)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(
            StaticToken(device=device, token=otp_secrets.hash_backup_code(code)) for code in codes
        )
    return codes


def use_backup_code(device: StaticDevice, code: str) -> bool:
    """Spend `code` if it is one of `device`'s unused backup codes; throttled like django-otp's own check.

    Call inside a transaction that locked `device` (select_for_update), so one code is used once.
    """
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False
    tokens = {token.token: token for token in device.token_set.select_for_update()}
    match = otp_secrets.matching_code(tokens, code)
    if match is None:
        device.throttle_increment()
        return False
    tokens[match].delete()
    device.throttle_reset(commit=False)
    device.set_last_used_timestamp(commit=False)
    device.save()
    return True


def has_confirmed_totp(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def verify_second_factor(user, token: str, *, allow_backup_codes=True):
    """Check `token` against the user's confirmed devices; returns the device that accepted it, or None.

    A backup code is consumed when it matches (use_backup_code: the codes are stored hashed).
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
            if isinstance(locked, StaticDevice):
                if use_backup_code(locked, token):
                    return locked
            elif locked.verify_token(token):
                return locked
    return None


def unlock_sign_in(user, *, actor=None) -> int:
    """Lift the wrong-code lockout of every second factor of `user` (django-otp throttles a device after
    failed codes, for longer after each) and the sign-in lockouts of django-axes (issue 14: every address,
    a `security.account_unlocked` event); audited. Returns how many devices and lockouts were lifted."""
    from apps.security import lockout

    with transaction.atomic():
        lifted = lockout.unlock(user.get_username(), actor=actor)
        devices = [
            *TOTPDevice.objects.select_for_update().filter(user=user),
            *StaticDevice.objects.select_for_update().filter(user=user),
        ]
        locked_out = [d for d in devices if d.throttling_failure_count]
        for device in locked_out:
            device.throttle_reset(commit=True)
        audit.record(actor, "accounts.sign_in_unlocked", user, {"devices": [d.persistent_id for d in locked_out]})
    return len(locked_out) + lifted


# ---------------------------------------------------------------- set by another person
def set_user_password(user, raw_password, *, actor) -> None:
    """Set `user`'s password; when `actor` is someone else, the owner must prove themselves to enrol."""
    with transaction.atomic():
        user.set_password(raw_password)
        user.save(update_fields=["password"])
        if actor is not None:  # None: the system itself (seed_demo, createsuperuser-like paths) set it
            note_password_set(user, actor=actor, via="service")


def note_set_by_other(user, *, actor, what: str, previous_email: str = "", via: str = "") -> None:
    """Call after `actor`, not the owner, set `user`'s password or e-mail (`what`), inside or outside a transaction.

    Whoever set it could now pass the password step, so: no authenticator can be enrolled until the owner
    enters a code e-mailed to them, any pending enrolment secret (which that person may have seen) is
    discarded, and the owner is told by e-mail (at the previous address too when the address changed).
    """
    with transaction.atomic():
        get_user_model().objects.filter(pk=user.pk).update(mfa_owner_proof_required=True)
        user.mfa_owner_proof_required = True
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        audit.record(
            actor, "accounts.set_by_other", user, {"what": what, "via": via, "enrolled": has_confirmed_totp(user)}
        )
        recipients = [a for a in {user.email, previous_email} if a]
        if recipients:
            subject = _("Your Tezgah account was changed by someone else")
            body = _(
                "%(actor)s changed the %(what)s of your Tezgah account %(username)s at %(when)s.\n\n"
                "Before an authenticator can be set up for this account, its owner must enter a code that "
                "Tezgah sends to this account's e-mail address. If you did not expect this change, tell your "
                "administrator."
            ) % {
                "actor": actor.get_username() if actor is not None else "Tezgah",
                "what": _("password") if what == "password" else _("e-mail address"),
                "username": user.get_username(),
                "when": timezone.localtime().strftime("%d.%m.%Y %H:%M"),
            }
            transaction.on_commit(lambda: send_mail(subject, body, None, recipients))


def send_owner_proof_code(user) -> str:
    """E-mail a fresh one-time code to `user`'s own address and return it (the caller keeps only its digest)."""
    code = f"{secrets.randbelow(10**8):08d}"
    body = _(
        "Your code to set up an authenticator for the Tezgah account %(username)s is: %(code)s\n\n"
        "It is valid for a few minutes, in the browser that asked for it. If you did not ask for it, somebody "
        "knows your password: tell your administrator."
    ) % {"username": user.get_username(), "code": code}
    send_mail(_("Your Tezgah enrolment code"), body, None, [user.email])
    note_sign_in_event("auth.mfa_owner_code_sent", user=user)
    return code


# ---------------------------------------------------------------- sign-in events
def note_sign_in_event(action: str, *, user=None, **details) -> None:
    """Audit one step of signing in or out (auth.login, auth.login_failed, auth.mfa_enrolled, ...).

    `user` is who the step is about (the claimed user of a failed code, say); details hold no secrets.
    A failed step (auth.login_failed, auth.step_up_failed) goes through `note_sign_in_failure`.
    """
    if action in FAILURE_ACTIONS:
        note_sign_in_failure(details.pop("step", None) or FAILURE_ACTIONS[action], user=user, action=action, **details)
        return
    with transaction.atomic():
        audit.record(_sign_in_actor(user), action, user, details)


def _sign_in_actor(user):
    if user is None:
        return ("anonymous", "")
    return user if user.is_authenticated else ("user", str(user.pk))


# The audit action of each failed step (its name from issue 5) and the step it stands for by default.
FAILURE_ACTIONS = {"auth.login_failed": "unknown", "auth.step_up_failed": "step_up"}
# A signed-in user failing step-up or being refused a token is more suspicious than a mistyped password.
_FAILURE_SEVERITY = {"step_up": "medium", "token": "medium"}


def note_sign_in_failure(step: str, *, user=None, username: str = "", action: str = "auth.login_failed", **details):
    """One failed sign-in step (password, code, backup code, owner code, enrolment, step-up, token refusal):
    one security event `sign_in_failed` (severity, client IP, request id, step; counted in
    tezgah_security_events_total) whose audit entry is `action` (auth.login_failed by default), so each
    failure is one audit entry. `username` is the name as typed when no user matched; it is stored like
    every event's username (the audit encrypts it under the subject's key) and never shown to the caller."""
    from apps.security.events import record_event
    from apps.security.models import EventType

    from .metrics import SIGN_IN_FAILURES

    step = str(step or "unknown")[:32]
    SIGN_IN_FAILURES.labels(step).inc()
    name = user.get_username() if user is not None else username
    with transaction.atomic():
        record_event(
            EventType.SIGN_IN_FAILED,
            _FAILURE_SEVERITY.get(step, "low"),
            actor=user if user is not None and user.is_authenticated else None,
            username=(name or "")[:150],
            audit_action=action,
            audit_actor=_sign_in_actor(user),
            target=user,
            step=step,
            **details,
        )


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
