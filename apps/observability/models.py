from django.db import models
from django.utils.translation import gettext_lazy as _


class RequestStat(models.Model):
    """Requests of one view and tenant in one time bucket: counts, errors and a latency histogram (SLA source).

    Written only by services.store_request_stats (additive upserts of each process's batch); columns b0..b13
    count requests per latency bucket (constants.LATENCY_BUCKETS; b13: above the last bound).
    """

    bucket = models.DateTimeField(_("bucket start"))
    # The tenant's id, 0 for requests of no single tenant: part of the unique key, which NULL could not be.
    tenant_key = models.PositiveBigIntegerField(_("tenant key"), default=0)
    # No database constraint: a batch must never fail because a tenant was deleted between request and flush.
    tenant = models.ForeignKey(
        "accounts.Tenant",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tenant"),
    )
    view = models.CharField(_("view"), max_length=200)
    requests = models.PositiveBigIntegerField(_("requests"), default=0)
    errors = models.PositiveBigIntegerField(_("server errors (5xx)"), default=0)
    client_errors = models.PositiveBigIntegerField(_("client errors (4xx)"), default=0)
    duration_ms_sum = models.FloatField(_("total duration (ms)"), default=0)
    b0 = models.PositiveBigIntegerField(default=0)
    b1 = models.PositiveBigIntegerField(default=0)
    b2 = models.PositiveBigIntegerField(default=0)
    b3 = models.PositiveBigIntegerField(default=0)
    b4 = models.PositiveBigIntegerField(default=0)
    b5 = models.PositiveBigIntegerField(default=0)
    b6 = models.PositiveBigIntegerField(default=0)
    b7 = models.PositiveBigIntegerField(default=0)
    b8 = models.PositiveBigIntegerField(default=0)
    b9 = models.PositiveBigIntegerField(default=0)
    b10 = models.PositiveBigIntegerField(default=0)
    b11 = models.PositiveBigIntegerField(default=0)
    b12 = models.PositiveBigIntegerField(default=0)
    b13 = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("request statistics")
        verbose_name_plural = _("request statistics")
        ordering = ["-bucket", "view"]
        constraints = [
            models.UniqueConstraint(fields=["bucket", "tenant_key", "view"], name="observability_stat_unique_key")
        ]
        indexes = [models.Index(fields=["tenant_key", "bucket"], name="observability_stat_tenant")]
        permissions = [("view_circuit_breakers", _("Can view the state of every circuit breaker"))]

    def __str__(self):
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.view}"
