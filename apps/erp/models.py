import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IntegrationProfile(models.Model):
    """How a tenant's ERP/MES is reached and how it reaches us; the profile without a tenant is the default."""

    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tenant")
    )
    name = models.CharField(_("name"), max_length=100)
    base_url = models.URLField(_("base URL"), blank=True, help_text=_("Empty: ERP_BASE_URL."))
    enabled = models.BooleanField(_("enabled"), default=True)
    # Set when the ERP refuses our credentials (401/403): deliveries wait instead of dead-lettering.
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    pause_reason = models.CharField(_("pause reason"), max_length=500, blank=True)
    connect_timeout_seconds = models.FloatField(_("connect timeout (s)"), null=True, blank=True)
    read_timeout_seconds = models.FloatField(_("read timeout (s)"), null=True, blank=True)
    standard_webhooks = models.BooleanField(
        _("Standard Webhooks signatures"),
        default=False,
        help_text=_("Also send webhook-id, webhook-timestamp and webhook-signature headers."),
    )
    # Only the token's hash is kept: it finds the profile of an inbound request and cannot be read back.
    inbound_token_sha256 = models.CharField(_("inbound token hash"), max_length=64, blank=True, editable=False)
    ip_allowlist = models.TextField(
        _("inbound IP allowlist"),
        blank=True,
        help_text=_("CIDRs, one per line or comma-separated. Empty: ERP_IP_ALLOWLIST."),
    )
    signature_required = models.BooleanField(_("inbound signature required"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("ERP integration profile")
        verbose_name_plural = _("ERP integration profiles")
        ordering = ["tenant__name", "name"]
        constraints = [
            # One profile per tenant, and one default (no tenant).
            models.UniqueConstraint(Coalesce("tenant", 0), name="erp_profile_one_per_tenant"),
        ]
        indexes = [models.Index(fields=["inbound_token_sha256"], name="erp_profile_token")]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.base_url:
            from django.conf import settings

            from apps.core import outbound_url

            error = outbound_url.validation_error(
                self.base_url, allowed_hosts=settings.ERP_ALLOWED_HOSTS, setting="ERP_ALLOWED_HOSTS"
            )
            if error is not None:
                raise ValidationError({"base_url": error})

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class KeyState(models.TextChoices):
    CURRENT = "current", _("Current")
    NEXT = "next", _("Next")
    RETIRED = "retired", _("Retired")


class ErpKey(models.Model):
    """One HMAC secret of a profile's key ring, encrypted at rest and shown only when it is made."""

    profile = models.ForeignKey(
        IntegrationProfile, on_delete=models.CASCADE, related_name="keys", verbose_name=_("profile")
    )
    state = models.CharField(_("state"), max_length=8, choices=KeyState.choices)
    secret_encrypted = models.TextField(_("encrypted secret"), editable=False)
    # Names the key in logs and the admin without revealing it: the first 16 hex digits of sha256(secret).
    fingerprint = models.CharField(_("fingerprint"), max_length=16, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ERP key")
        verbose_name_plural = _("ERP keys")
        ordering = ["profile_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["profile"], condition=models.Q(state="current"), name="erp_key_one_current"
            ),
            models.UniqueConstraint(fields=["profile"], condition=models.Q(state="next"), name="erp_key_one_next"),
        ]

    def __str__(self):
        return f"{self.profile} {self.state} {self.fingerprint}"


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")


class SyncStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    ACKED = "acked", _("Acknowledged")
    FAILED = "failed", _("Failed")
    RESOLVED = "resolved", _("Resolved")
    IGNORED = "ignored", _("Ignored")


class ErrorClass(models.TextChoices):
    TIMEOUT = "timeout", _("Timeout")
    CONNECTION = "connection", _("Connection error")
    SERVER = "server", _("5xx from the ERP")
    RATE_LIMITED = "rate_limited", _("408/429 from the ERP")
    CREDENTIALS = "credentials", _("401/403 from the ERP")
    REJECTED = "rejected", _("Other 4xx from the ERP")
    UNACKNOWLEDGED = "unacknowledged", _("Never acknowledged")
    # The base URL's host is not public and not in ERP_ALLOWED_HOSTS: no call was made; the profile pauses.
    REFUSED = "refused", _("Refused by the outbound policy")


class ErpSync(models.Model):
    """One message to or from the ERP: its exact body, keys, state and the outcome of its last attempt."""

    id = models.BigAutoField(primary_key=True)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices)
    status = models.CharField(_("status"), max_length=8, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    profile = models.ForeignKey(
        IntegrationProfile, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("profile")
    )
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tenant")
    )
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("job"))
    external_id = models.CharField(_("ERP id"), max_length=64, blank=True)
    event_id = models.UUIDField(_("event id"), null=True, blank=True)
    # The job's event sequence number (meta.seq): a job's messages go out in this order.
    seq = models.PositiveBigIntegerField(_("sequence"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    body_sha256 = models.CharField(_("body sha256"), max_length=64)
    request_body = models.JSONField(_("request body"))
    # The exact bytes sent (or received): retries and replays re-send these, byte for byte.
    body = models.TextField(_("body bytes"))
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error_class = models.CharField(_("error class"), max_length=16, choices=ErrorClass.choices, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    attempt_count = models.PositiveIntegerField(_("attempts"), default=0)
    # Retries used of ERP_RETRY_SCHEDULE; attempts while the profile was paused do not count.
    retry_count = models.PositiveIntegerField(_("retries used"), default=0)
    reconcile_count = models.PositiveIntegerField(_("reconciler re-enqueues"), default=0)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # A worker that dies mid-attempt holds the row only until this lease runs out.
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    acked_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    # The originating request's trace (copied from the outbox event): every attempt sends it as traceparent.
    trace_context = models.JSONField(_("trace context"), default=dict, blank=True)
    # Inbound: the ERP's own time of the message, and whether it moved the job (older ones do not).
    ext_ts = models.DateTimeField(_("ERP timestamp"), null=True, blank=True)
    applied = models.BooleanField(_("applied"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "erp_mes_sync"
        verbose_name = _("ERP sync record")
        verbose_name_plural = _("ERP sync records")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("replay_erpsync", _("Can replay ERP messages from the dead-letter queue")),
            ("resolve_erpsync", _("Can requeue, resolve or ignore ERP messages")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["direction", "idempotency_key"], name="erp_sync_idempotency_key"),
            models.CheckConstraint(condition=models.Q(status__in=SyncStatus.values), name="erp_sync_status_known"),
        ]
        indexes = [
            models.Index(fields=["direction", "status", "next_attempt_at"], name="erp_sync_due"),
            models.Index(fields=["job", "direction", "seq"], name="erp_sync_job_seq"),
            models.Index(fields=["job", "direction", "ext_ts"], name="erp_sync_job_ext_ts"),
            models.Index(fields=["direction", "acked_at"], name="erp_sync_acked"),
            models.Index(fields=["-created_at", "-id"], name="erp_sync_created"),
        ]

    def __str__(self):
        return f"{self.direction} #{self.pk} {self.status}"


class ErpSyncAttempt(models.Model):
    """One HTTP attempt of an outbound message: when, which request id, what came back."""

    sync = models.ForeignKey(ErpSync, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("message"))
    number = models.PositiveIntegerField(_("number"))
    request_id = models.CharField(_("request id"), max_length=64)
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16)
    error_class = models.CharField(_("error class"), max_length=16, choices=ErrorClass.choices, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    response_excerpt = models.CharField(_("response excerpt"), max_length=500, blank=True)
    signed_with = models.CharField(_("key fingerprint"), max_length=16, blank=True)

    class Meta:
        db_table = "erp_mes_sync_attempts"
        verbose_name = _("ERP delivery attempt")
        verbose_name_plural = _("ERP delivery attempts")
        ordering = ["sync_id", "number"]
        constraints = [models.UniqueConstraint(fields=["sync", "number"], name="erp_attempt_number")]

    def __str__(self):
        return f"#{self.sync_id}.{self.number} {self.outcome}"


class DeadLetterCause(models.TextChoices):
    REJECTED = "rejected", _("Rejected by the ERP (4xx)")
    EXHAUSTED = "exhausted", _("Retries exhausted")
    UNACKNOWLEDGED = "unacknowledged", _("Never acknowledged (reconciler)")


class ErpOutboundDeadLetter(models.Model):
    """An outbound message that will not be retried by itself; replay, resolve or ignore closes it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sync = models.ForeignKey(ErpSync, on_delete=models.PROTECT, related_name="dead_letters", verbose_name=_("message"))
    cause = models.CharField(_("cause"), max_length=16, choices=DeadLetterCause.choices)
    error_class = models.CharField(_("error class"), max_length=16, choices=ErrorClass.choices, blank=True)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.CharField(_("closed by"), max_length=16, blank=True)  # replayed | resolved | ignored

    class Meta:
        db_table = "erp_outbound_dlq"
        verbose_name = _("ERP dead letter")
        verbose_name_plural = _("ERP dead letters")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["sync"], condition=models.Q(closed_at__isnull=True), name="erp_dlq_one_open_per_message"
            ),
        ]
        indexes = [models.Index(fields=["closed_at", "created_at"], name="erp_dlq_open")]

    def __str__(self):
        return f"DLQ #{self.sync_id} {self.cause}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
