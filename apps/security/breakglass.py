"""Break-glass: a time-boxed bypass of ADMIN_IP_ALLOWLIST for one user, requested by one admin and approved
by a second; every step is a security event (so audited); it expires by itself."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .events import record_event
from .models import BreakGlass, EventType, Severity

CAPABILITY = "security.add_breakglass"


def request_access(*, user, actor, reason: str, minutes: int) -> BreakGlass:
    if not actor.has_perm(CAPABILITY):
        raise PermissionDenied(_("You may not request break-glass access."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason.")})
    if not 1 <= minutes <= settings.BREAK_GLASS_MAX_MINUTES:
        raise ValidationError(
            {"minutes": _("Between 1 and %(max)d minutes.") % {"max": settings.BREAK_GLASS_MAX_MINUTES}}
        )
    with transaction.atomic():
        grant = BreakGlass.objects.create(user=user, reason=reason, minutes=minutes, requested_by=actor)
        record_event(
            EventType.BREAK_GLASS_REQUESTED,
            Severity.HIGH,
            actor=actor,
            username=user.get_username(),
            grant=grant.pk,
            reason=reason,
            minutes=minutes,
        )
    return grant


def approve(grant: BreakGlass, *, approver) -> BreakGlass:
    """The second admin's approval: from now until now + minutes. The requester cannot approve their own."""
    if not approver.has_perm(CAPABILITY):
        raise PermissionDenied(_("You may not approve break-glass access."))
    if approver.pk == grant.requested_by_id or approver.pk == grant.user_id:
        raise PermissionDenied(_("A second administrator must approve break-glass access."))
    with transaction.atomic():
        grant = BreakGlass.objects.select_for_update().get(pk=grant.pk)
        if grant.revoked_at is not None:
            raise ValidationError(_("This request was revoked."))
        if grant.approved_at is not None:
            raise ValidationError(_("This request was already approved."))
        now = timezone.now()
        grant.approved_by = approver
        grant.approved_at = now
        grant.expires_at = now + timedelta(minutes=grant.minutes)
        grant.save(update_fields=["approved_by", "approved_at", "expires_at"])
        record_event(
            EventType.BREAK_GLASS_APPROVED,
            Severity.HIGH,
            actor=approver,
            username=grant.user.get_username(),
            grant=grant.pk,
            expires_at=grant.expires_at.isoformat(),
        )
    return grant


def revoke(grant: BreakGlass, *, actor) -> BreakGlass:
    """End a request or a live grant now (any holder of the capability, the requester too): it never works
    again. An expired or already revoked one is refused."""
    if not actor.has_perm(CAPABILITY):
        raise PermissionDenied(_("You may not revoke break-glass access."))
    with transaction.atomic():
        grant = BreakGlass.objects.select_for_update().get(pk=grant.pk)
        now = timezone.now()
        if grant.status(now) not in ("pending", "active"):
            raise ValidationError(_("This break-glass access has already ended."))
        was = grant.status(now)
        grant.revoked_by = actor
        grant.revoked_at = now
        if grant.expires_at is not None:
            grant.expires_at = now
        grant.save(update_fields=["revoked_by", "revoked_at", "expires_at"])
        record_event(
            EventType.BREAK_GLASS_REVOKED,
            Severity.HIGH,
            actor=actor,
            username=grant.user.get_username(),
            grant=grant.pk,
            was=was,
        )
    return grant


def live_grants(now=None):
    return BreakGlass.objects.filter(
        approved_at__isnull=False, revoked_at__isnull=True, expires_at__gt=now or timezone.now()
    )


def active_grant(user, now=None):
    return live_grants(now).filter(user=user).first()


def bypass_active(request) -> bool:
    """Whether the signed-in user of `request` holds an approved, unexpired break-glass (a refused-path check
    only: requests from allowed addresses never get here). The first use of a grant is an event."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        # Signing in: the sign-in steps open while any grant is live; whoever signs in is then refused on
        # their next page unless the grant is theirs.
        return _is_sign_in_step(request.path) and live_grants().exists()
    grant = active_grant(user)
    if grant is None:
        return False
    if cache.add(f"security:break-glass-used:{grant.pk}", 1, grant.minutes * 60 + 60):
        record_event(
            EventType.BREAK_GLASS_USED,
            Severity.HIGH,
            actor=user,
            username=user.get_username(),
            grant=grant.pk,
            path=request.path[:200],
        )
    return True


def _is_sign_in_step(path: str) -> bool:
    from django.urls import reverse

    return path in {reverse(f"admin:{name}") for name in ("login", "mfa_verify", "mfa_enrol")}
