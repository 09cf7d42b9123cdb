from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LicenseState(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class License(models.Model):
    """A tenant's right to use the portal for a number of seats over a period."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    product = models.CharField(_("product"), max_length=100, default="tezgah")
    seats = models.PositiveIntegerField(_("seats"), validators=[MinValueValidator(1)])
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    state = models.CharField(_("state"), max_length=16, choices=LicenseState.choices, default=LicenseState.ACTIVE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("license")
        verbose_name_plural = _("licenses")
        ordering = ["valid_until", "id"]
        permissions = [("extend_license", _("Can extend licenses"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")), name="billing_license_period_ordered"
            )
        ]
        indexes = [models.Index(fields=["tenant", "state", "valid_until"], name="billing_license_tenant_state")]

    def __str__(self):
        return f"{self.product} × {self.seats} ({self.valid_from} – {self.valid_until})"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")


class Invoice(models.Model):
    """A bill to a tenant for one period; its totals are the sum of its lines."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    number = models.CharField(_("number"), max_length=32, unique=True)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    currency = models.CharField(_("currency"), max_length=3, default="TRY")
    tax_rate = models.DecimalField(_("tax rate"), max_digits=5, decimal_places=4, default=Decimal("0.20"))
    subtotal = models.DecimalField(_("subtotal"), max_digits=14, decimal_places=2, default=Decimal("0"))
    tax = models.DecimalField(_("tax"), max_digits=14, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(_("total"), max_digits=14, decimal_places=2, default=Decimal("0"))
    status = models.CharField(_("status"), max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Invoices from usage (issue 19): the usage events recorded after `usage_after` and up to `usage_cutoff`
    # are what it bills (with the pricing versions in force when they occurred); recompute_invoice re-reads them.
    from_usage = models.BooleanField(_("from usage"), default=False)
    usage_after = models.DateTimeField(_("usage recorded after"), null=True, blank=True)
    usage_cutoff = models.DateTimeField(_("usage recorded up to"), null=True, blank=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-period_start", "number"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="billing_invoice_period_ordered"
            )
        ]

    def __str__(self):
        return self.number


class InvoiceLine(models.Model):
    """One billed item of an invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines", verbose_name=_("invoice"))
    description = models.CharField(_("description"), max_length=200)
    # Negative on a credit line (a correction of usage already billed).
    quantity = models.DecimalField(_("quantity"), max_digits=16, decimal_places=4)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=4)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, editable=False, default=Decimal("0"))
    # For lines from usage: what was metered, in which month, priced by which version and tier.
    metric = models.CharField(_("metric"), max_length=32, blank=True, default="")
    dimension = models.CharField(_("dimension"), max_length=64, blank=True, default="")
    usage_month = models.CharField(_("usage month"), max_length=7, blank=True, default="")
    pricing_version = models.PositiveIntegerField(_("pricing version"), null=True, blank=True)
    tier_from = models.DecimalField(_("from quantity"), max_digits=16, decimal_places=4, null=True, blank=True)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice_id", "id"]

    def __str__(self):
        return self.description


class UsageMetric(models.TextChoices):
    JOBS_PROCESSED = "jobs_processed", _("Jobs processed")
    MACHINE_HOURS = "machine_hours", _("Machine hours")
    API_CALLS = "api_calls", _("API calls")
    EXPORTS = "exports", _("Exports")
    ERP_MESSAGES = "erp_messages", _("ERP messages")


class UsageEvent(models.Model):
    """One metered use by a tenant; the same idempotency key is stored once, so a resent event counts once.

    Rows are never edited: a correction is a new event (negative quantity) that names the one it corrects.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    metric = models.CharField(_("metric"), max_length=32, choices=UsageMetric.choices)
    # What the metric is broken down by: the model type code for jobs and machine hours, the direction for
    # ERP messages; blank when the metric has no breakdown.
    dimension = models.CharField(_("dimension"), max_length=64, blank=True, default="")
    quantity = models.DecimalField(_("quantity"), max_digits=16, decimal_places=4)
    occurred_at = models.DateTimeField(_("occurred at"))
    # When the portal learnt of it: an invoice covers the events recorded up to its cut-off.
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    source = models.CharField(_("source"), max_length=64, blank=True, default="")
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections", verbose_name=_("corrects")
    )
    note = models.CharField(_("note"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        ordering = ["-occurred_at", "-id"]
        permissions = [("view_usage_report", _("Can view usage and cost reports"))]
        constraints = [
            models.CheckConstraint(condition=models.Q(metric__in=UsageMetric.values), name="billing_usage_metric_known")
        ]
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="billing_usage_tenant_occurred"),
            models.Index(fields=["tenant", "recorded_at"], name="billing_usage_tenant_recorded"),
        ]

    def __str__(self):
        return f"{self.metric} {self.quantity} @ {self.occurred_at:%Y-%m-%d}"


class PricingVersion(models.Model):
    """One version of the price list, in force from `valid_from` until the next version; never edited."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    currency = models.CharField(_("currency"), max_length=3, default="TRY")
    valid_from = models.DateField(_("valid from"), unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    # sha256 of the canonical content, so loading the same configs/pricing.yaml twice adds nothing.
    content_sha256 = models.CharField(_("content sha256"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("pricing version")
        verbose_name_plural = _("pricing versions")
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(currency__in=["TRY", "EUR", "USD"]), name="billing_pricing_currency"
            )
        ]

    def __str__(self):
        return f"v{self.version} ({self.currency}, {self.valid_from})"


class PriceRate(models.Model):
    """A unit price of a metric (optionally of one dimension) from a tier's first unit on."""

    pricing = models.ForeignKey(
        PricingVersion, on_delete=models.PROTECT, related_name="rates", verbose_name=_("pricing version")
    )
    metric = models.CharField(_("metric"), max_length=32, choices=UsageMetric.choices)
    # Blank: every dimension without a rate of its own.
    dimension = models.CharField(_("dimension"), max_length=64, blank=True, default="")
    tier_from = models.DecimalField(_("from quantity"), max_digits=16, decimal_places=4, default=Decimal("0"))
    unit_price = models.DecimalField(
        _("unit price"), max_digits=14, decimal_places=4, validators=[MinValueValidator(0)]
    )

    class Meta:
        verbose_name = _("price rate")
        verbose_name_plural = _("price rates")
        ordering = ["pricing_id", "metric", "dimension", "tier_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["pricing", "metric", "dimension", "tier_from"], name="billing_rate_unique_tier"
            )
        ]

    def __str__(self):
        return f"{self.metric}/{self.dimension or '*'} ≥{self.tier_from}: {self.unit_price}"
