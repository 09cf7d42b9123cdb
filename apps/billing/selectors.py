"""Reads of usage and pricing: daily sums, the versions in force, cost reports, invoice inputs."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import TruncDate

from . import pricing
from .models import PricingVersion, UsageEvent, UsageMetric

UNIT = Decimal("0.0001")


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=local_zone())


def pricing_versions() -> list[pricing.Version]:
    """Every pricing version with its rates, as plain values for `pricing`."""
    out = []
    for v in PricingVersion.objects.prefetch_related("rates").order_by("valid_from"):
        rates = tuple(pricing.Rate(r.metric, r.dimension, r.tier_from, r.unit_price) for r in v.rates.all())
        out.append(pricing.Version(v.version, v.currency, v.valid_from, rates))
    return out


def daily_usage(tenant_id, start: dt.date, end: dt.date, *, recorded_upto=None) -> dict:
    """{(local day, metric, dimension): quantity} of the tenant's events that occurred in [start, end).

    With `recorded_upto`, only events the portal had recorded by then (what an invoice with that cut-off saw).
    """
    rows = UsageEvent.objects.filter(
        tenant_id=tenant_id, occurred_at__gte=local_midnight(start), occurred_at__lt=local_midnight(end)
    )
    if recorded_upto is not None:
        rows = rows.filter(recorded_at__lte=recorded_upto)
    grouped = (
        rows.annotate(day=TruncDate("occurred_at", tzinfo=local_zone()))
        .values("day", "metric", "dimension")
        .annotate(total=Sum("quantity"))
        .order_by()
    )
    # Sums come back as 2 on SQLite and 2.0000 on PostgreSQL: one scale for both.
    return {(r["day"], r["metric"], r["dimension"]): Decimal(r["total"]).quantize(UNIT) for r in grouped}


def usage_totals(tenant_id, period: pricing.Period, *, grain: str = "day") -> list[dict]:
    """Quantities per metric by day, ISO week or month (`grain`) over `period`."""
    buckets = defaultdict(lambda: defaultdict(Decimal))
    for (day, metric, _dimension), qty in daily_usage(tenant_id, period.start, period.end).items():
        buckets[_bucket(day, grain)][metric] += qty
    return [{"bucket": b, **{m: str(v) for m, v in sorted(buckets[b].items())}} for b in sorted(buckets)]


def _bucket(day: dt.date, grain: str) -> str:
    if grain == "month":
        return f"{day:%Y-%m}"
    if grain == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


def cost_report(tenant, period: pricing.Period) -> dict:
    """Usage and cost of `tenant` over `period`: priced lines, totals per metric, and a daily series.

    Tiers count from the period's first day (invoices price calendar months).
    """
    daily = daily_usage(tenant.pk, period.start, period.end)
    priced = pricing.price_daily(daily, pricing_versions())
    lines = priced.lines()
    per_metric = defaultdict(lambda: {"quantity": Decimal(0), "amount": Decimal(0)})
    for line in lines:
        per_metric[line["metric"]]["quantity"] += line["quantity"]
        per_metric[line["metric"]]["amount"] += line["amount"]
    metrics = [m for m in UsageMetric.values if m in per_metric]
    days = [d.isoformat() for d in period.days()]
    series = {
        m: [str(pricing.amount(priced.daily_cost.get((d, m), Decimal(0)), Decimal(1))) for d in period.days()]
        for m in metrics
    }
    total = sum((line["amount"] for line in lines), Decimal("0.00"))
    currencies = sorted(priced.currencies) or [settings.BILLING_DEFAULT_CURRENCY]
    return {
        "tenant": tenant.slug,
        "period": period.label,
        "grain": period.grain,
        "start": period.start.isoformat(),
        "end": (period.end - dt.timedelta(days=1)).isoformat(),
        "currency": currencies[0] if len(currencies) == 1 else "MIXED",
        "lines": lines,
        "metrics": [{"metric": m, **per_metric[m]} for m in metrics],
        "total": total,
        "daily": {"days": days, "cost": series},
    }
