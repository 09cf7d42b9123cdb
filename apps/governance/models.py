from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RetentionPolicy(models.Model):
    """How long one data class is kept, and whether it is archived before it is deleted (admin-editable)."""

    data_class = models.CharField(_("data class"), max_length=64, unique=True)
    retention_days = models.PositiveIntegerField(_("retention (days)"))
    archive_before_delete = models.BooleanField(_("archive before delete"), default=False)
    description = models.CharField(_("description"), max_length=500, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")
        ordering = ["data_class"]
        permissions = [("apply_retention", _("Can apply retention policies"))]

    def __str__(self):
        return f"{self.data_class}: {self.retention_days}"


class HoldScope(models.TextChoices):
    GLOBAL = "global", _("Global")
    TENANT = "tenant", _("Tenant")
    SUBJECT = "subject", _("Data subject")
    OBJECT_TYPE = "object_type", _("Data class")


class LegalHold(models.Model):
    """A legal hold: while it stands (not lifted), retention, erasure and archive-and-delete leave its data alone."""

    scope = models.CharField(_("scope"), max_length=16, choices=HoldScope.choices)
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tenant")
    )
    # The data subject: a user id (the id audit entries and exports name them by).
    subject_id = models.CharField(_("data subject"), max_length=64, blank=True)
    object_type = models.CharField(_("data class"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=500)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("placed by"),
    )  # fmt: skip
    placed_at = models.DateTimeField(_("placed at"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("lifted by"),
    )  # fmt: skip
    lift_reason = models.CharField(_("reason for lifting"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        ordering = ["-placed_at"]
        indexes = [models.Index(fields=["lifted_at"], name="governance_hold_active")]

    def __str__(self):
        target = self.tenant_id or self.subject_id or self.object_type or "*"
        return f"{self.scope}:{target}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class RunState(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class RetentionRun(models.Model):
    """One application of a data class's policy: its fixed cutoff and progress, so an interrupted run resumes."""

    data_class = models.CharField(_("data class"), max_length=64)
    cutoff = models.DateTimeField(_("cutoff"))
    state = models.CharField(_("state"), max_length=16, choices=RunState.choices, default=RunState.RUNNING)
    # Keyset position: every eligible row with a primary key up to this one has been handled.
    last_pk = models.CharField(_("last primary key"), max_length=100, blank=True)
    deleted = models.BigIntegerField(_("deleted"), default=0)
    archived = models.BigIntegerField(_("archived"), default=0)
    parts = models.JSONField(_("archive parts"), default=list, blank=True)
    manifest = models.CharField(_("archive manifest"), max_length=300, blank=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_class"], condition=models.Q(state="running"), name="governance_one_running_run"
            )
        ]

    def __str__(self):
        return f"{self.data_class} {self.started_at:%Y-%m-%d %H:%M}"


class RequestType(models.TextChoices):
    ACCESS = "access", _("Access")
    RECTIFICATION = "rectification", _("Rectification")
    ERASURE = "erasure", _("Erasure")
    PORTABILITY = "portability", _("Portability")
    RESTRICTION = "restriction", _("Restriction")


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    COMPLETED = "completed", _("Completed")
    REFUSED = "refused", _("Refused")


class DataSubjectRequest(models.Model):
    """A data subject's request (GDPR articles 15-20), answered by its due date (30 days after it was made)."""

    request_type = models.CharField(_("request type"), max_length=16, choices=RequestType.choices)
    # The subject is a user of the portal: their id (audit entries name them by it) and the e-mail they gave.
    subject_id = models.CharField(_("data subject"), max_length=64)
    subject_email = models.EmailField(_("subject e-mail"), blank=True)
    # Rectification: {"field": "new value"} for the user's own fields (first_name, last_name, email).
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created at"))
    due_at = models.DateTimeField(_("due"))
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        verbose_name = _("data subject request")
        verbose_name_plural = _("data subject requests")
        ordering = ["due_at"]
        permissions = [("process_datasubjectrequest", _("Can process data subject requests"))]

    def __str__(self):
        return f"{self.request_type} {self.subject_id}"
