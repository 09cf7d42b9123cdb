import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class StatusSource(models.TextChoices):
    ADMIN = "admin", _("Admin")
    ADMIN_BULK = "admin_bulk", _("Admin bulk action")
    API = "api", _("API")
    ERP = "erp", _("ERP")
    SYSTEM = "system", _("System")
    SEED = "seed", _("Demo data")


class Job(models.Model):
    """A production job of a tenant; its status changes only through `jobs.services.change_status`."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    # NULL, not "", for "no ERP id yet": the per-tenant unique constraint must not treat blanks as equal.
    external_id = models.CharField(_("ERP id"), max_length=64, blank=True, null=True)  # noqa: DJ001
    model_type = models.ForeignKey("catalog.ModelType", on_delete=models.PROTECT, verbose_name=_("model type"))
    machine = models.ForeignKey("catalog.Machine", on_delete=models.PROTECT, verbose_name=_("machine"))
    post = models.ForeignKey("catalog.Post", on_delete=models.PROTECT, verbose_name=_("post"))
    material = models.ForeignKey(
        "catalog.Material", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("material")
    )
    template = models.ForeignKey(
        "catalog.Template", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("template")
    )
    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(
        _("progress"), default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.BigIntegerField(_("duration (ms)"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Number of job.status.changed events emitted so far; the next event carries event_seq + 1.
    event_seq = models.PositiveBigIntegerField(_("event sequence"), default=0, db_default=0, editable=False)

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("cancel_job", _("Can cancel jobs")),
            ("change_job_status", _("Can change a job's status")),
            ("import_job", _("Can import jobs")),
            ("export_job", _("Can export jobs")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                name="jobs_job_external_id_per_tenant",
                condition=models.Q(external_id__isnull=False),
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="jobs_job_progress_0_100"),
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="jobs_job_status_known"),
        ]
        indexes = [
            # The changelist, API and reports filter by tenant first, then status or a catalog item, by time.
            models.Index(fields=["tenant", "-created_at", "-id"], name="jobs_tenant_created"),
            models.Index(fields=["tenant", "status", "-created_at"], name="jobs_tenant_status_created"),
            models.Index(fields=["machine", "-created_at"], name="jobs_machine_created"),
            models.Index(fields=["post", "-created_at"], name="jobs_post_created"),
            models.Index(fields=["model_type", "-created_at"], name="jobs_modeltype_created"),
            models.Index(fields=["status", "-created_at"], name="jobs_status_created"),
            models.Index(fields=["-created_at", "-id"], name="jobs_created"),
        ]

    def __str__(self):
        return self.external_id or str(self.public_id)


class JobStatusChange(models.Model):
    """One row per status change of a job: the history the admin shows inline."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("job"))
    from_status = models.CharField(_("from"), max_length=16, choices=JobStatus.choices)
    to_status = models.CharField(_("to"), max_length=16, choices=JobStatus.choices)
    progress = models.PositiveSmallIntegerField(_("progress"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("actor")
    )
    source = models.CharField(_("source"), max_length=16, choices=StatusSource.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("job status change")
        verbose_name_plural = _("job status changes")
        ordering = ["job_id", "changed_at", "id"]
        indexes = [models.Index(fields=["job", "changed_at"], name="jobs_change_job_time")]

    def __str__(self):
        return f"{self.from_status} → {self.to_status}"
