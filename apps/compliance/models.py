from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FrameworkCode(models.TextChoices):
    SOC2 = "soc2", "SOC 2"
    ISO27001 = "iso27001", "ISO/IEC 27001:2022"
    GDPR = "gdpr", "GDPR"


class Framework(models.Model):
    """A compliance framework whose controls are data (configs/compliance/<code>.yaml)."""

    code = models.CharField(_("code"), max_length=16, choices=FrameworkCode.choices, unique=True)
    name = models.CharField(_("name"), max_length=200)
    version = models.CharField(_("version"), max_length=50)

    class Meta:
        verbose_name = _("framework")
        verbose_name_plural = _("frameworks")
        ordering = ["code"]

    def __str__(self):
        return self.name


class Control(models.Model):
    """A control or criterion of a framework, with its Statement of Applicability entry."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    ref = models.CharField(_("reference"), max_length=20)
    title = models.CharField(_("title"), max_length=300)
    category = models.CharField(_("category"), max_length=100, blank=True)
    applicable = models.BooleanField(_("applicable"), default=True)
    justification = models.TextField(_("justification"), blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("control")
        verbose_name_plural = _("controls")
        ordering = ["framework_id", "position"]
        constraints = [models.UniqueConstraint(fields=["framework", "ref"], name="compliance_control_ref_unique")]

    def __str__(self):
        return f"{self.ref} {self.title}"


class ControlEvidence(models.Model):
    """That a control is shown by an evidence item (a code of apps/compliance/evidence.py)."""

    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="evidence")
    evidence = models.CharField(_("evidence"), max_length=40)

    class Meta:
        verbose_name = _("control evidence mapping")
        verbose_name_plural = _("control evidence mappings")
        ordering = ["control_id", "evidence"]
        constraints = [models.UniqueConstraint(fields=["control", "evidence"], name="compliance_mapping_unique")]

    def __str__(self):
        return f"{self.control.ref} ← {self.evidence}"


class ProcessingActivity(models.Model):
    """A GDPR Article 30 record of processing, from the declared list (configs/compliance/gdpr.yaml)."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    purpose = models.TextField(_("purpose"))
    data_subjects = models.TextField(_("data subjects"))
    data_categories = models.TextField(_("categories of personal data"))
    recipients = models.TextField(_("recipients"))
    transfers = models.TextField(_("transfers to third countries"))
    retention = models.TextField(_("retention"))
    security = models.TextField(_("security measures"))

    class Meta:
        verbose_name = _("record of processing")
        verbose_name_plural = _("records of processing")
        ordering = ["name"]

    def __str__(self):
        return self.name


class PackageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class EvidencePackage(models.Model):
    """A generated evidence zip for one framework and period: its progress, file, hash and audit checkpoint."""

    framework = models.CharField(_("framework"), max_length=16, choices=FrameworkCode.choices)
    period = models.CharField(_("period"), max_length=16)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    status = models.CharField(_("status"), max_length=16, choices=PackageStatus.choices, default=PackageStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    step = models.CharField(_("step"), max_length=100, blank=True)
    file_name = models.CharField(_("file"), max_length=300, blank=True)
    sha256 = models.CharField(_("sha256"), max_length=64, blank=True)
    checkpoint_tree_size = models.BigIntegerField(_("audit checkpoint (entries)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("evidence package")
        verbose_name_plural = _("evidence packages")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.framework} {self.period}"
