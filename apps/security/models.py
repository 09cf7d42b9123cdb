"""Security events, sign-in lockouts (beside django-axes' attempt rows) and the IP allow/block lists."""

import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class EventType(models.TextChoices):
    """The bounded set of security decisions (also the Prometheus label values)."""

    SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
    ACCOUNT_LOCKED = "account_locked", _("Account locked")
    ACCOUNT_UNLOCKED = "account_unlocked", _("Account unlocked")
    LOCKED_OUT_REFUSED = "locked_out_refused", _("Locked-out attempt refused")
    IP_AUTO_BLOCKED = "ip_auto_blocked", _("Address blocked automatically")
    IP_LIST_CHANGED = "ip_list_changed", _("Address list changed")
    IP_REFUSED = "ip_refused", _("Address refused")
    SESSION_TERMINATED = "session_terminated", _("Session ended")
    BREAK_GLASS_REQUESTED = "break_glass_requested", _("Break-glass requested")
    BREAK_GLASS_APPROVED = "break_glass_approved", _("Break-glass approved")
    BREAK_GLASS_USED = "break_glass_used", _("Break-glass used")
    BREAK_GLASS_REVOKED = "break_glass_revoked", _("Break-glass revoked")
    MFA_DEVICE_ADDED = "mfa_device_added", _("MFA device added")
    MFA_DEVICE_REMOVED = "mfa_device_removed", _("MFA device removed")


class SecurityEvent(models.Model):
    """One security decision; written only by apps.security.events.record_event (which also audits it)."""

    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    event_type = models.CharField(_("event type"), max_length=40, choices=EventType.choices)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    client_ip = models.CharField(_("client IP"), max_length=45, blank=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["event_type", "created_at"]), models.Index(fields=["severity", "created_at"])]
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        permissions = [("unlock_account", _("Can lift a sign-in lockout"))]

    def __str__(self):
        return f"{self.event_type} {self.username or self.client_ip}"


class Lockout(models.Model):
    """One lockout of a (username, client) pair: axes counts the failures, this row says how long it lasts
    (LOCKOUT_DURATION_MINUTES doubled for every earlier lockout of the pair in 24 hours) and who lifted it.
    The client is `device` (a digest of the browser's device cookie) when set, else the address; the address
    is always recorded (the automatic block counts lockouts per address)."""

    username = models.CharField(_("username"), max_length=150)
    ip_address = models.CharField(_("client IP"), max_length=45)
    device = models.CharField(_("device"), max_length=64, blank=True, default="")
    locked_at = models.DateTimeField(_("locked at"), default=timezone.now)
    until = models.DateTimeField(_("locked until"))
    level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("lifted by"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-locked_at"]
        indexes = [
            models.Index(fields=["username", "ip_address", "locked_at"]),
            models.Index(fields=["ip_address", "locked_at"]),
        ]
        verbose_name = _("lockout")
        verbose_name_plural = _("lockouts")

    def __str__(self):
        return f"{self.username} @ {self.ip_address} until {self.until:%Y-%m-%d %H:%M}"

    @classmethod
    def active(cls, now=None):
        return cls.objects.filter(until__gt=now or timezone.now(), lifted_at__isnull=True)

    @property
    def duration(self):
        return self.until - self.locked_at


class ListType(models.TextChoices):
    # The seed's words: "whitelist" allows, "blacklist" blocks.
    ALLOW = "whitelist", _("Allow")
    BLOCK = "blacklist", _("Block")


class Scope(models.TextChoices):
    ALL = "all", _("Everything")
    ADMIN = "admin", _("Staff surfaces")
    API = "api", _("API")
    ERP_INBOUND = "erp_inbound", _("ERP inbound")


def validate_network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(
            _("%(value)s is not an IPv4/IPv6 address or CIDR network."), params={"value": value}
        ) from None


def normalise_network(value: str) -> str:
    """`10.1.2.3` -> `10.1.2.3/32`, `2001:DB8::/32` -> `2001:db8::/32`, host bits cleared."""
    return str(ipaddress.ip_network(value.strip(), strict=False))


class IPListEntry(models.Model):
    """An address or CIDR network on the allow or block list for one scope; it stops matching at `expires_at`."""

    network = models.CharField(_("address or network"), max_length=49, validators=[validate_network])
    list_type = models.CharField(_("list"), max_length=10, choices=ListType.choices)
    scope = models.CharField(_("scope"), max_length=12, choices=Scope.choices, default=Scope.ALL)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("added by"), null=True, blank=True, on_delete=models.SET_NULL
    )
    automatic = models.BooleanField(_("added automatically"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["list_type", "network"]
        constraints = [
            models.UniqueConstraint(fields=["network", "list_type", "scope"], name="security_ip_entry_unique")
        ]
        verbose_name = _("address list entry")
        verbose_name_plural = _("address list entries")

    def __str__(self):
        return f"{self.get_list_type_display()} {self.network} ({self.scope})"

    def save(self, *args, **kwargs):
        self.network = normalise_network(self.network)
        super().save(*args, **kwargs)

    @classmethod
    def live(cls, now=None):
        return cls.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now()))


class UserSession(models.Model):
    """A signed-in browser session (the session row itself lives in django.contrib.sessions): who, since when,
    from where; `ended_at` once it was ended (logout, forced logout, the concurrent-session cap, lockout)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE)
    session_key = models.CharField(_("session key"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_activity = models.DateTimeField(_("last activity"), default=timezone.now)
    ip_address = models.CharField(_("client IP"), max_length=45, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=40, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "ended_at"])]
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    def __str__(self):
        return f"{self.user_id} {self.created_at:%Y-%m-%d %H:%M}"


class BreakGlass(models.Model):
    """A time-boxed bypass of the admin address allowlist for one user: requested by one admin, approved by a
    second one, with a reason; it works from approval until `expires_at` and then never again."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="break_glass_grants"
    )
    reason = models.CharField(_("reason"), max_length=500)
    minutes = models.PositiveIntegerField(_("minutes"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("break-glass access")
        verbose_name_plural = _("break-glass accesses")
        constraints = [
            models.CheckConstraint(  # the requester never approves their own request
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="security_break_glass_second_approver",
            )
        ]

    def __str__(self):
        return f"break-glass {self.user_id} ({self.minutes} min)"

    def status(self, now=None) -> str:
        """pending, active, expired or revoked (the admin's list)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.approved_at is None:
            return "pending"
        return "active" if self.expires_at > (now or timezone.now()) else "expired"
