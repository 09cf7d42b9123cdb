"""ERP reconciliation: versioned config, the file registry, staged rows, runs and breaks (issue 18)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReconConfig(models.Model):
    """One version of a profile's recon config (keys, columns, tolerances, status map, drop folders)."""

    profile = models.ForeignKey(
        "erp.IntegrationProfile", on_delete=models.PROTECT, related_name="recon_configs", verbose_name=_("profile")
    )
    version = models.PositiveIntegerField(_("version"))
    data = models.JSONField(_("config"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("author")
    )
    reason = models.CharField(_("reason"), max_length=500)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        db_table = "recon_config"
        verbose_name = _("recon config version")
        verbose_name_plural = _("recon config versions")
        ordering = ["profile_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["profile", "version"], name="recon_config_version")]

    def __str__(self):
        return f"{self.profile} v{self.version}"

    @property
    def tenant_id(self):
        return self.profile.tenant_id


class FileSource(models.TextChoices):
    ADMIN = "admin", _("Admin upload")
    API = "api", _("API")
    DROP = "drop", _("Drop folder")
    COMMAND = "command", _("Command")


class FileStatus(models.TextChoices):
    LOADING = "loading", _("Loading")
    LOADED = "loaded", _("Loaded")
    REJECTED = "rejected", _("Rejected")


class ReconFile(models.Model):
    """An ERP export file as received: its sha256, how it was read, and its validation outcome."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    profile = models.ForeignKey("erp.IntegrationProfile", on_delete=models.PROTECT, verbose_name=_("profile"))
    name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("sha256"), max_length=64)
    size = models.BigIntegerField(_("size (bytes)"))
    source = models.CharField(_("source"), max_length=8, choices=FileSource.choices)
    # Set when a duplicate was accepted with force: points at the first file with these bytes.
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("duplicate of")
    )
    file_format = models.CharField(_("format"), max_length=8)
    encoding = models.CharField(_("encoding"), max_length=16, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=4, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=FileStatus.choices, default=FileStatus.LOADING)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    # The first MAX_REPORTED_ERRORS errors: [{"row": 5, "column": "C", "header": "progress", "message": ...}].
    errors = models.JSONField(_("errors"), default=list, blank=True)
    # XLSX cells that held a formula: kept as their text, never evaluated, listed here (first 100).
    formula_cells = models.JSONField(_("formula cells"), default=list, blank=True)
    formula_count = models.PositiveIntegerField(_("formula cells found"), default=0)
    # Our field names the file carried (a field the file lacks is not compared).
    columns = models.JSONField(_("fields present"), default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("uploaded by")
    )
    created_at = models.DateTimeField(_("received at"), default=timezone.now, editable=False)
    load_ms = models.PositiveIntegerField(_("load time (ms)"), null=True, blank=True)

    class Meta:
        db_table = "recon_file_registry"
        verbose_name = _("ERP export file")
        verbose_name_plural = _("ERP export files")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The registry: one original per hash; forced duplicates point at it.
            models.UniqueConstraint(
                fields=["sha256"], condition=models.Q(duplicate_of__isnull=True), name="recon_file_sha256_first"
            ),
        ]
        indexes = [models.Index(fields=["sha256"], name="recon_file_sha256")]

    def __str__(self):
        return f"{self.name} ({self.sha256[:12]})"


class StagedRow(models.Model):
    """One loaded row of an ERP file; times are UTC epoch seconds so the join compares integers."""

    id = models.BigAutoField(primary_key=True)
    # No database constraint: checking 100k deferred foreign keys at commit cost more than the COPY itself.
    file = models.ForeignKey(
        ReconFile, on_delete=models.CASCADE, db_index=False, db_constraint=False, verbose_name=_("file")
    )
    row_number = models.PositiveIntegerField(_("row"))
    key = models.CharField(_("key"), max_length=300)
    external_id = models.CharField(_("ERP id"), max_length=64, blank=True)
    machine = models.CharField(_("machine"), max_length=64, blank=True)
    model_type = models.CharField(_("model type"), max_length=64, blank=True)
    planned_start = models.BigIntegerField(_("planned start"), null=True)
    status = models.CharField(_("status"), max_length=64, blank=True)
    progress = models.FloatField(_("progress"), null=True)
    started_at = models.BigIntegerField(_("started at"), null=True)
    finished_at = models.BigIntegerField(_("finished at"), null=True)

    class Meta:
        db_table = "recon_staged_row"
        verbose_name = _("staged ERP row")
        verbose_name_plural = _("staged ERP rows")
        # On the file only, like PortalRow's: the join hashes the keys; a key index slowed every COPY.
        indexes = [models.Index(fields=["file"], name="recon_staged_file")]

    def __str__(self):
        return f"{self.file_id}:{self.row_number}"


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ReconRun(models.Model):
    """One comparison of a file with the portal's jobs: inputs, config version, counts, duration, who."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    profile = models.ForeignKey("erp.IntegrationProfile", on_delete=models.PROTECT, verbose_name=_("profile"))
    config = models.ForeignKey(ReconConfig, on_delete=models.PROTECT, verbose_name=_("config version"))
    file = models.ForeignKey(ReconFile, on_delete=models.PROTECT, verbose_name=_("file"))
    input_hashes = models.JSONField(_("input file hashes"), default=list)
    # A re-run compares against the portal as the earlier run saw it: that run's snapshot.
    snapshot_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("snapshot of run")
    )
    writes_breaks = models.BooleanField(_("writes breaks"), default=True)
    status = models.CharField(_("status"), max_length=8, choices=RunStatus.choices, default=RunStatus.RUNNING)
    counts = models.JSONField(_("counts per break type"), default=dict, blank=True)
    cleared_count = models.PositiveIntegerField(_("auto-cleared"), default=0)
    # sha256 over the sorted (fingerprint, kind, details) of every break found: equal results, equal digest.
    result_sha256 = models.CharField(_("result digest"), max_length=64, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("started by")
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        db_table = "recon_runs"
        verbose_name = _("recon run")
        verbose_name_plural = _("recon runs")
        ordering = ["-started_at", "-id"]
        permissions = [("run_recon", _("Can start reconciliation runs"))]

    def __str__(self):
        return f"#{self.pk} {self.profile} v{self.config.version if self.config_id else '?'}"


class PortalRow(models.Model):
    """The portal's side of a run: each job of the tenant as the run saw it (a re-run reuses it)."""

    id = models.BigAutoField(primary_key=True)
    # No database constraint, like StagedRow.file: the snapshot is written in bulk by INSERT ... SELECT.
    run = models.ForeignKey(
        ReconRun, on_delete=models.CASCADE, db_index=False, db_constraint=False, verbose_name=_("run")
    )
    job_id = models.BigIntegerField(_("job"))
    key = models.CharField(_("key"), max_length=300)
    external_id = models.CharField(_("ERP id"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16)
    progress = models.FloatField(_("progress"))
    started_at = models.BigIntegerField(_("started at"), null=True)
    finished_at = models.BigIntegerField(_("finished at"), null=True)

    class Meta:
        db_table = "recon_portal_row"
        verbose_name = _("portal row of a run")
        verbose_name_plural = _("portal rows of runs")
        # On the run only: a (run, key) index doubled the snapshot's time and the join hashes the keys anyway.
        indexes = [models.Index(fields=["run"], name="recon_portal_run")]

    def __str__(self):
        return f"{self.run_id}:{self.job_id}"


class BreakKind(models.TextChoices):
    MISSING_IN_ERP = "MISSING_IN_ERP", _("Missing in the ERP")
    MISSING_IN_PORTAL = "MISSING_IN_PORTAL", _("Missing in the portal")
    STATUS_MISMATCH = "STATUS_MISMATCH", _("Status mismatch")
    FIELD_MISMATCH = "FIELD_MISMATCH", _("Field mismatch")
    DUPLICATE_KEY = "DUPLICATE_KEY", _("Duplicate key")


class BreakState(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")
    SUPPRESSED = "suppressed", _("Suppressed")
    CLEARED = "cleared", _("Cleared automatically")


class Break(models.Model):
    """One difference between the ERP and the portal, identified by its fingerprint across runs."""

    # No single-column indexes on tenant and profile: recon_break_queue (tenant, ...) and the fingerprint's
    # unique (profile, fingerprint) lead with them and serve every lookup; each index costs every upsert.
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, db_index=False, verbose_name=_("tenant"))
    profile = models.ForeignKey(
        "erp.IntegrationProfile", on_delete=models.PROTECT, db_index=False, verbose_name=_("profile")
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    kind = models.CharField(_("type"), max_length=20, choices=BreakKind.choices)
    key = models.CharField(_("key"), max_length=300)
    job_id = models.BigIntegerField(_("job"), null=True, blank=True)
    external_id = models.CharField(_("ERP id"), max_length=64, blank=True)
    # FIELD_MISMATCH: {"fields": {"progress": {"erp": 40, "portal": 50}}}; others: what each side holds.
    details = models.JSONField(_("details"), default=dict)
    state = models.CharField(_("state"), max_length=12, choices=BreakState.choices, default=BreakState.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recon_breaks",
        verbose_name=_("assignee"),
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    suppressed_until = models.DateTimeField(_("suppressed until"), null=True, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    first_run = models.ForeignKey(
        ReconRun, on_delete=models.PROTECT, related_name="+", null=True, verbose_name=_("first run")
    )
    last_run = models.ForeignKey(
        ReconRun, on_delete=models.PROTECT, related_name="breaks", null=True, verbose_name=_("last run")
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "recon_breaks"
        verbose_name = _("break")
        verbose_name_plural = _("breaks")
        ordering = ["first_seen_at", "id"]
        permissions = [
            ("assign_break", _("Can assign breaks")),
            ("comment_break", _("Can comment on breaks")),
            ("resolve_break", _("Can resolve and reopen breaks")),
            ("suppress_break", _("Can suppress and unsuppress breaks")),
            ("export_break", _("Can export breaks")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["profile", "fingerprint"], name="recon_break_fingerprint"),
            models.CheckConstraint(condition=models.Q(kind__in=BreakKind.values), name="recon_break_kind_known"),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "first_seen_at"], name="recon_break_queue"),
            models.Index(fields=["state", "suppressed_until"], name="recon_break_suppressed"),
        ]

    def __str__(self):
        return f"{self.kind} {self.key}"

    @property
    def is_closed(self) -> bool:
        return self.state in (BreakState.RESOLVED, BreakState.CLEARED)


class BreakComment(models.Model):
    """A note on a break, by whoever works it."""

    brk = models.ForeignKey(Break, on_delete=models.CASCADE, related_name="comments", verbose_name=_("break"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, verbose_name=_("author"))
    text = models.TextField(_("comment"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        db_table = "recon_break_comments"
        verbose_name = _("break comment")
        verbose_name_plural = _("break comments")
        ordering = ["brk_id", "created_at", "id"]

    def __str__(self):
        return f"{self.brk_id}: {self.text[:40]}"


class DropSighting(models.Model):
    """A file seen in a drop folder, with its size and mtime: picked up only once they hold still."""

    path = models.CharField(_("path"), max_length=1000, unique=True)
    size = models.BigIntegerField(_("size"))
    mtime_ns = models.BigIntegerField(_("modified (ns)"))
    seen_at = models.DateTimeField(_("seen at"), default=timezone.now)

    class Meta:
        db_table = "recon_drop_sighting"
        verbose_name = _("drop folder sighting")
        verbose_name_plural = _("drop folder sightings")

    def __str__(self):
        return self.path
