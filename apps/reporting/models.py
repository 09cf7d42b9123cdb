import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportFormat(models.TextChoices):
    CSV = "csv", _("CSV (RFC 4180: UTF-8, comma)")
    CSV_EXCEL = "csv_excel", _("CSV for Excel (Turkish: BOM, semicolon, decimal comma)")
    XLSX = "xlsx", "Excel (XLSX)"
    JSON = "json", "JSON"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ReportExport(models.Model):
    """A requested report file: its filters, progress, and once written its storage name, row count and sha256."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    format = models.CharField(_("format"), max_length=16, choices=ExportFormat.choices)
    filters = models.JSONField(_("filters"), default=dict)
    single_use = models.BooleanField(_("single-use link"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_expected = models.BigIntegerField(_("rows expected"), default=0)
    rows_written = models.BigIntegerField(_("rows written"), default=0)
    # The highest job id the export includes: later jobs never slip into a running export.
    snapshot_job_id = models.BigIntegerField(_("snapshot job id"), default=0)
    data_as_of = models.DateTimeField(_("data as of"), null=True, blank=True)
    file_name = models.CharField(_("file"), max_length=300, blank=True)
    size_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("sha256"), max_length=64, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    downloaded_at = models.DateTimeField(_("first downloaded at"), null=True, blank=True)
    download_count = models.PositiveIntegerField(_("downloads"), default=0)

    class Meta:
        verbose_name = _("report export")
        verbose_name_plural = _("report exports")
        ordering = ["-created_at"]
        permissions = [("view_report", _("Can view reports and dashboards"))]
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="reporting_export_user_created")]

    def __str__(self):
        return f"{self.format} {self.id}"

    @property
    def progress_percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        if not self.rows_expected:
            return 0
        return min(99, int(self.rows_written * 100 / self.rows_expected))


class AlertMetric(models.TextChoices):
    FAILURE_RATE = "failure_rate", _("Failure rate (%)")
    P95_MS = "p95_ms", _("P95 duration (ms)")


class AlertSeverity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook (JSON, Slack-compatible)")


def validate_time_zone(value):
    """An IANA time zone name such as Europe/Istanbul (a typo would stop every later evaluation)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a known time zone (e.g. Europe/Istanbul)."), params={"value": value}
        ) from None


class AlertChannel(models.Model):
    """Where a tenant's alerts go (an e-mail address or a webhook URL) and when non-critical ones must wait."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, verbose_name=_("tenant"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=ChannelKind.choices)
    target = models.CharField(_("target"), max_length=500, help_text=_("E-mail address or webhook URL"))
    # Quiet hours: local wall-clock times in quiet_tz; start after end wraps midnight (22:00-07:00).
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    quiet_tz = models.CharField(
        _("quiet hours time zone"), max_length=64, default="Europe/Istanbul", validators=[validate_time_zone]
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Circuit breaker: after ALERT_BREAKER_FAILURES failures in a row, no attempt until open_until.
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    open_until = models.DateTimeField(_("circuit open until"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert channel")
        verbose_name_plural = _("alert channels")
        ordering = ["tenant_id", "name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self):
        super().clean()
        if self.kind == ChannelKind.WEBHOOK and self.target:
            from apps.core import outbound_url

            error = outbound_url.validation_error(
                self.target,
                allowed_hosts=settings.ALERT_WEBHOOK_ALLOWED_HOSTS,
                setting="ALERT_WEBHOOK_ALLOWED_HOSTS",
            )
            if error is not None:
                raise ValidationError({"target": error})


class AlertRule(models.Model):
    """A tenant's threshold on a metric over a trailing window, with a severity and a repeat interval."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, verbose_name=_("tenant"))
    name = models.CharField(_("name"), max_length=100)
    metric = models.CharField(_("metric"), max_length=16, choices=AlertMetric.choices)
    threshold = models.FloatField(_("threshold"))
    window_minutes = models.PositiveIntegerField(_("window (minutes)"), default=15)
    # Fewer finished jobs than this in the window and the rule says nothing (one failure is not a spike).
    min_jobs = models.PositiveIntegerField(_("minimum jobs in window"), default=5)
    severity = models.CharField(_("severity"), max_length=16, choices=AlertSeverity.choices)
    repeat_every_minutes = models.PositiveIntegerField(_("repeat every (minutes)"), default=30)
    channels = models.ManyToManyField(AlertChannel, related_name="rules", verbose_name=_("channels"))
    is_active = models.BooleanField(_("active"), default=True)
    # Current state, kept by the evaluator: since when it is breached (None: fine) and the last value seen.
    breached_since = models.DateTimeField(_("breached since"), null=True, blank=True)
    last_value = models.FloatField(_("last value"), null=True, blank=True)
    last_evaluated_at = models.DateTimeField(_("last evaluated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["tenant_id", "name"]

    def __str__(self):
        return self.name


class NoticeKind(models.TextChoices):
    FIRING = "firing", _("Firing")
    RESOLVED = "resolved", _("Resolved")


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    HELD = "held", _("Held for quiet hours")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class AlertNotice(models.Model):
    """One breach (or its resolution) of a rule on one channel: the dedup unit, with when it was last sent."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="notices", verbose_name=_("rule"))
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="+", verbose_name=_("channel"))
    # rule id, kind and the breach's start: a standing breach keeps its key, a new breach gets a new one.
    dedup_key = models.CharField(_("dedup key"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=NoticeKind.choices)
    severity = models.CharField(_("severity"), max_length=16, choices=AlertSeverity.choices)
    status = models.CharField(_("status"), max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    value = models.FloatField(_("value"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    send_count = models.PositiveIntegerField(_("times sent"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("alert notice")
        verbose_name_plural = _("alert notices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "dedup_key"], name="reporting_notice_channel_dedup"),
        ]

    def __str__(self):
        return self.dedup_key


class JobRollup(models.Model):
    """Derived: how many jobs (and how many with a duration) per Istanbul day, tenant, status, model type,
    machine and post. Kept exact by triggers on jobs_job (apps/reporting/rollup.py); never edited by hand."""

    day = models.DateField(_("day (Istanbul)"))
    # Plain ids, no foreign keys: the rows are derived from jobs_job, whose own keys protect the catalog.
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    model_type_id = models.BigIntegerField(_("model type id"))
    machine_id = models.BigIntegerField(_("machine id"))
    post_id = models.BigIntegerField(_("post id"))
    jobs = models.BigIntegerField(_("jobs"), default=0)
    with_duration = models.BigIntegerField(_("jobs with a duration"), default=0)

    class Meta:
        verbose_name = _("job rollup")
        verbose_name_plural = _("job rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "tenant_id", "status", "model_type_id", "machine_id", "post_id"],
                name="reporting_jobrollup_key",
            ),
        ]
        indexes = [models.Index(fields=["tenant_id", "day"], name="reporting_jobrollup_tenant_day")]

    def __str__(self):
        return f"{self.day} {self.status}: {self.jobs}"


class JobDurationRollup(models.Model):
    """Derived: how many jobs per Istanbul day, tenant, status and duration bucket: the whole minute
    (duration_ms // 60000) below 4 hours, an hour-wide span above (`duration_minute` is the bucket's first minute,
    rollup.minute_bucket); the percentiles find their bucket here and read only that bucket's jobs (selectors)."""

    day = models.DateField(_("day (Istanbul)"))
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    duration_minute = models.BigIntegerField(_("duration minute"))
    jobs = models.BigIntegerField(_("jobs"), default=0)

    class Meta:
        verbose_name = _("job duration rollup")
        verbose_name_plural = _("job duration rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "tenant_id", "status", "duration_minute"], name="reporting_jobdurationrollup_key"
            ),
        ]
        indexes = [models.Index(fields=["tenant_id", "day"], name="reporting_jobdur_tenant_day")]

    def __str__(self):
        return f"{self.day} {self.status} {self.duration_minute} min: {self.jobs}"


class JobMonthRollup(models.Model):
    """Derived: JobRollup's counts per Istanbul calendar month (`month` is its first day) instead of per day.
    Reports read whole months of their date range here and only the days at its ends from JobRollup."""

    month = models.DateField(_("month (Istanbul, first day)"))
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    model_type_id = models.BigIntegerField(_("model type id"))
    machine_id = models.BigIntegerField(_("machine id"))
    post_id = models.BigIntegerField(_("post id"))
    jobs = models.BigIntegerField(_("jobs"), default=0)
    with_duration = models.BigIntegerField(_("jobs with a duration"), default=0)

    class Meta:
        verbose_name = _("job month rollup")
        verbose_name_plural = _("job month rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "tenant_id", "status", "model_type_id", "machine_id", "post_id"],
                name="reporting_jobmonthrollup_key",
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.status}: {self.jobs}"


class JobDayStatusRollup(models.Model):
    """Derived: jobs per Istanbul day, tenant and status only, for the key figures and the trend when no catalog
    filter is set (a few rows a day where JobRollup has hundreds)."""

    day = models.DateField(_("day (Istanbul)"))
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    jobs = models.BigIntegerField(_("jobs"), default=0)
    with_duration = models.BigIntegerField(_("jobs with a duration"), default=0)

    class Meta:
        verbose_name = _("job day status rollup")
        verbose_name_plural = _("job day status rollups")
        constraints = [
            models.UniqueConstraint(fields=["day", "tenant_id", "status"], name="reporting_jobdaystatusrollup_key"),
        ]

    def __str__(self):
        return f"{self.day} {self.status}: {self.jobs}"


class JobDurationMonthRollup(models.Model):
    """Derived: JobDurationRollup's counts per Istanbul calendar month instead of per day."""

    month = models.DateField(_("month (Istanbul, first day)"))
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    duration_minute = models.BigIntegerField(_("duration minute"))
    jobs = models.BigIntegerField(_("jobs"), default=0)

    class Meta:
        verbose_name = _("job duration month rollup")
        verbose_name_plural = _("job duration month rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "tenant_id", "status", "duration_minute"], name="reporting_jobdurationmonthrollup_key"
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.status} {self.duration_minute} min: {self.jobs}"


class JobDurationPostMonthRollup(models.Model):
    """Derived: JobDurationMonthRollup's counts per machine and post too (a post belongs to one machine, so this
    adds no rows), so percentiles and the histogram with a machine or post filter over whole months need no scan
    of the jobs."""

    month = models.DateField(_("month (Istanbul, first day)"))
    tenant_id = models.BigIntegerField(_("tenant id"))
    status = models.CharField(_("status"), max_length=16)
    machine_id = models.BigIntegerField(_("machine id"))
    post_id = models.BigIntegerField(_("post id"))
    duration_minute = models.BigIntegerField(_("duration minute"))
    jobs = models.BigIntegerField(_("jobs"), default=0)

    class Meta:
        verbose_name = _("job duration post month rollup")
        verbose_name_plural = _("job duration post month rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["machine_id", "post_id", "month", "tenant_id", "status", "duration_minute"],
                name="reporting_jobdurpostmonth_key",
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} post {self.post_id} {self.status} {self.duration_minute} min: {self.jobs}"
