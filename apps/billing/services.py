"""Writes to licenses and invoices (extensions, expiry, totals), usage events, pricing versions, usage invoices."""

import datetime as dt
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit

from . import pricing, selectors
from .models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    License,
    LicenseState,
    PriceRate,
    PricingVersion,
    UsageEvent,
    UsageMetric,
)

CENT = Decimal("0.01")


def extend_licenses(licenses, *, days=0, months=0, actor=None) -> list[License]:
    """Push each license's end date out by `months` and `days`; an expired one becomes active again.

    Revoked licenses are skipped; the caller reports those missing from the returned list.
    """
    if days < 0 or months < 0 or (days == 0 and months == 0):
        raise ValueError("Extend by a positive number of days or months.")
    extended = []
    with transaction.atomic():
        for lic in License.objects.select_for_update().filter(pk__in=[x.pk for x in licenses]).order_by("pk"):
            if lic.state == LicenseState.REVOKED:
                continue
            before = (lic.valid_until.isoformat(), lic.state)
            lic.valid_until = lic.valid_until + relativedelta(months=months, days=days)
            if lic.state == LicenseState.EXPIRED and lic.valid_until >= timezone.localdate():
                lic.state = LicenseState.ACTIVE
            lic.save(update_fields=["valid_until", "state", "updated_at"])
            audit.record(
                actor,
                "license.extended",
                lic,
                {"valid_until": [before[0], lic.valid_until.isoformat()], "state": [before[1], lic.state]},
            )
            extended.append(lic)
        audit.record(
            actor,
            "license.bulk_extend",
            None,
            {"extended": [lic.pk for lic in extended], "days": days, "months": months},
            object_type="billing.license",
        )
    return extended


def expire_licenses(*, today=None) -> int:
    """Mark active licenses whose end date has passed as expired; returns how many."""
    today = today or timezone.localdate()
    return License.objects.filter(state=LicenseState.ACTIVE, valid_until__lt=today).update(
        state=LicenseState.EXPIRED, updated_at=timezone.now()
    )


def recalculate_invoice(invoice: Invoice) -> Invoice:
    """Set every line's amount and the invoice's subtotal, tax and total from its lines."""
    with transaction.atomic():
        subtotal = Decimal("0")
        for line in InvoiceLine.objects.select_for_update().filter(invoice=invoice):
            amount = (line.quantity * line.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
            if amount != line.amount:
                line.amount = amount
                line.save(update_fields=["amount"])
            subtotal += amount
        invoice.subtotal = subtotal
        invoice.tax = (subtotal * invoice.tax_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        invoice.total = invoice.subtotal + invoice.tax
        invoice.save(update_fields=["subtotal", "tax", "total"])
    return invoice


# ---------------------------------------------------------------- usage, pricing, invoices from usage (issue 19)


def record_usage(
    tenant_id, metric, quantity, *, key, occurred_at=None, dimension="", source="", corrects=None, note=""
):
    """Store one usage event under the idempotency `key`; returns (event, created). A key already stored adds
    nothing and returns the first event (a resent event counts once). Call inside the caller's transaction."""
    if metric not in UsageMetric.values:
        raise ValueError(f"unknown usage metric {metric!r}")
    return UsageEvent.objects.get_or_create(
        idempotency_key=key[:200],
        defaults={
            "tenant_id": tenant_id,
            "metric": metric,
            "dimension": (dimension or "")[:64],
            "quantity": Decimal(str(quantity)),
            "occurred_at": occurred_at or timezone.now(),
            "recorded_at": timezone.now(),
            "source": source[:64],
            "corrects": corrects,
            "note": note[:200],
        },
    )


def record_usage_batch(events: list[dict]) -> None:
    """Store many usage events in one INSERT ... ON CONFLICT DO NOTHING (the outbox subscriber, the API call
    counter's flush); a key already stored adds nothing. Safe inside the caller's transaction (no savepoint)."""
    now = timezone.now()
    UsageEvent.objects.bulk_create(
        [UsageEvent(recorded_at=now, **e) for e in events if e["metric"] in UsageMetric.values],
        ignore_conflicts=True,
        batch_size=500,
    )


def correct_usage(event: UsageEvent, quantity, *, key, actor=None, note="") -> UsageEvent:
    """A correction of `event`: a new event of the same tenant, metric and day with `quantity` (negative to
    take units back). Already-issued invoices stay as they are; the next invoice carries the difference."""
    with transaction.atomic():
        correction, _created = record_usage(
            event.tenant_id,
            event.metric,
            quantity,
            key=key,
            occurred_at=event.occurred_at,
            dimension=event.dimension,
            source="correction",
            corrects=event,
            note=note,
        )
        audit.record(
            actor,
            "usage.corrected",
            correction,
            {"corrects": event.pk, "quantity": str(quantity)},
            tenant_id=event.tenant_id,
        )
    return correction


def _canonical(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def create_pricing_version(*, valid_from, currency="TRY", rates, note="", actor=None) -> PricingVersion:
    """Add a pricing version (never edit one): `rates` are dicts of metric, dimension, tier_from, unit_price.

    Returns the existing version when one with the same content and start is there already (loading
    configs/pricing.yaml twice adds nothing). A start on or before an issued invoice's period end is allowed:
    issued invoices keep the versions they were priced with, because versions never change.
    """
    if currency not in ("TRY", "EUR", "USD"):
        raise ValueError(f"currency {currency!r}: use TRY, EUR or USD")
    clean = []
    for r in rates:
        if r["metric"] not in UsageMetric.values:
            raise ValueError(f"unknown usage metric {r['metric']!r}")
        price = Decimal(str(r["unit_price"]))
        if price < 0:
            raise ValueError("a unit price cannot be negative")
        clean.append(
            {
                "metric": r["metric"],
                "dimension": str(r.get("dimension") or ""),
                "tier_from": Decimal(str(r.get("tier_from") or 0)),
                "unit_price": price,
            }
        )
    digest = _canonical(
        {
            "valid_from": str(valid_from),
            "currency": currency,
            "rates": sorted([{k: str(v) for k, v in r.items()} for r in clean], key=lambda r: sorted(r.items())),
        }
    )
    with transaction.atomic():
        same = PricingVersion.objects.filter(content_sha256=digest, valid_from=valid_from).first()
        if same:
            return same
        if PricingVersion.objects.filter(valid_from=valid_from).exists():
            raise ValueError(f"a pricing version starting {valid_from} exists already; add one with a later start")
        last = PricingVersion.objects.order_by("-version").values_list("version", flat=True).first() or 0
        version = PricingVersion.objects.create(
            version=last + 1, currency=currency, valid_from=valid_from, note=note[:200], content_sha256=digest
        )
        PriceRate.objects.bulk_create([PriceRate(pricing=version, **r) for r in clean])
        summary = {"version": version.version, "valid_from": str(valid_from), "currency": currency, "rates": len(clean)}
        audit.record(actor, "pricing.version_added", version, summary)
    return version


def add_pricing_version_row(version: PricingVersion) -> PricingVersion:
    """The admin's way in: save a new version row with the next number; its rates follow, then seal it."""
    if version.pk:
        raise ValueError("a saved pricing version is never edited; add a new one")
    with transaction.atomic():
        last = PricingVersion.objects.select_for_update().order_by("-version").values_list("version", flat=True)
        version.version = (last.first() or 0) + 1
        version.content_sha256 = ""
        version.save()
    return version


def seal_pricing_version(version: PricingVersion, *, actor=None) -> PricingVersion:
    """Record the content hash of a version added in the admin, once its rates are saved; audited."""
    rates = [
        {"metric": r.metric, "dimension": r.dimension, "tier_from": str(r.tier_from), "unit_price": str(r.unit_price)}
        for r in version.rates.all()
    ]
    content = {
        "valid_from": str(version.valid_from),
        "currency": version.currency,
        "rates": sorted(rates, key=lambda r: sorted(r.items())),
    }
    PricingVersion.objects.filter(pk=version.pk, content_sha256="").update(content_sha256=_canonical(content))
    audit.record(actor, "pricing.version_added", version, {"version": version.version, "rates": len(rates)})
    return version


def load_pricing_file(path, *, actor=None) -> list[PricingVersion]:
    """Load configs/pricing.yaml: `versions: [{valid_from, currency, note, rates: [...]}, ...]`."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    loaded = []
    for item in sorted(document.get("versions", []), key=lambda v: str(v["valid_from"])):
        valid_from = item["valid_from"]
        if isinstance(valid_from, str):
            valid_from = dt.date.fromisoformat(valid_from)
        loaded.append(
            create_pricing_version(
                valid_from=valid_from,
                currency=item.get("currency", settings.BILLING_DEFAULT_CURRENCY),
                rates=item.get("rates", []),
                note=item.get("note", ""),
                actor=actor,
            )
        )
    return loaded


_METRIC_LABELS = {
    "jobs_processed": "Jobs processed",
    "machine_hours": "Machine hours",
    "api_calls": "API calls",
    "exports": "Exports",
    "erp_messages": "ERP messages",
}


def _description(line: dict, month: str) -> str:
    text = _METRIC_LABELS.get(line["metric"], line["metric"])
    if line["dimension"]:
        text += f" · {line['dimension']}"
    if line["tier_from"]:
        text += f" · from {line['tier_from'].normalize():f}"
    text += f" · pricing v{line['pricing_version']}"
    if line["usage_month"] != month:
        text += (
            f" · late usage of {line['usage_month']}"
            if line["quantity"] > 0
            else f" · credit for {line['usage_month']}"
        )
    return text[:200]


def invoice_lines(tenant_id, month_start: dt.date, *, usage_after, usage_cutoff) -> list[dict]:
    """The lines of a usage invoice of `month_start`'s month: that month's usage recorded up to the cut-off,
    plus for every earlier month with events recorded in (usage_after, usage_cutoff] the difference they make
    (a late event is a line of its month; a correction that takes units back is a credit line).
    Deterministic from its inputs (events and pricing versions are never edited): recompute_invoice relies on it.
    """
    versions = selectors.pricing_versions()
    month_end = pricing.month_after(month_start)
    month = f"{month_start:%Y-%m}"

    def month_lines(start, upto):
        daily = selectors.daily_usage(tenant_id, start, pricing.month_after(start), recorded_upto=upto)
        return {
            (
                ln["metric"],
                ln["dimension"],
                ln["usage_month"],
                ln["pricing_version"],
                ln["tier_from"],
                ln["unit_price"],
            ): ln["quantity"]
            for ln in pricing.price_daily(daily, versions).lines()
        }

    wanted = [(month_start, month_lines(month_start, usage_cutoff))]
    if usage_after is not None:
        late = UsageEvent.objects.filter(
            tenant_id=tenant_id,
            recorded_at__gt=usage_after,
            recorded_at__lte=usage_cutoff,
            occurred_at__lt=selectors.local_midnight(month_start),
        ).values_list("occurred_at", flat=True)
        months = sorted({timezone.localtime(t, selectors.local_zone()).date().replace(day=1) for t in late})
        for start in months:
            now, before = month_lines(start, usage_cutoff), month_lines(start, usage_after)
            wanted.append((start, {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before)}))
    lines = []
    for _start, quantities in wanted:
        for key in sorted(quantities, key=lambda k: (k[2], k[0], k[1], k[3], k[4], k[5])):
            qty = quantities[key]
            if qty == 0:
                continue
            metric, dimension, usage_month, version, tier_from, unit_price = key
            line = {
                "metric": metric,
                "dimension": dimension,
                "usage_month": usage_month,
                "pricing_version": version,
                "tier_from": tier_from,
                "quantity": qty,
                "unit_price": unit_price,
            }
            line["description"] = _description(line, month)
            line["amount"] = pricing.amount(qty, unit_price)
            lines.append(line)
    del month_end
    return lines


def _currency_of(month_start) -> str:
    versions = selectors.pricing_versions()
    version = pricing.in_force(versions, pricing.month_after(month_start) - dt.timedelta(days=1))
    return version.currency if version else settings.BILLING_DEFAULT_CURRENCY


def _previous_cutoff(tenant_id, month_start):
    return (
        Invoice.objects.filter(tenant_id=tenant_id, from_usage=True, period_start__lt=month_start)
        .exclude(status=InvoiceStatus.VOID)
        .order_by("-period_start")
        .values_list("usage_cutoff", flat=True)
        .first()
    )


def draft_usage_invoice(tenant, month_start: dt.date, *, now=None, actor=None) -> Invoice:
    """Write (or rewrite, while still a draft) the usage invoice of `tenant` for the month of `month_start`.

    The cut-off is now minus BILLING_CUTOFF_SETTLE_SECONDS, so events of transactions still open when it is
    taken (their recorded_at before it, their rows not yet visible) are not silently missed by a recompute.
    An issued invoice is never rewritten: later events go on the next month's invoice.
    """
    # Never a cut-off in the future: events recorded after the draft would then slip into a recompute.
    now = min(now or timezone.now(), timezone.now())
    month_start = month_start.replace(day=1)
    cutoff = now - dt.timedelta(seconds=settings.BILLING_CUTOFF_SETTLE_SECONDS)
    number = f"U{month_start:%Y%m}-{tenant.pk:06d}"
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(number=number).first()
        if invoice and invoice.status != InvoiceStatus.DRAFT:
            raise ValueError(f"invoice {number} is {invoice.status}; corrections go on a later invoice")
        after = _previous_cutoff(tenant.pk, month_start)
        lines = invoice_lines(tenant.pk, month_start, usage_after=after, usage_cutoff=cutoff)
        fields = {
            "tenant": tenant,
            "period_start": month_start,
            "period_end": pricing.month_after(month_start) - dt.timedelta(days=1),
            "currency": _currency_of(month_start),
            "tax_rate": settings.BILLING_TAX_RATE,
            "from_usage": True,
            "usage_after": after,
            "usage_cutoff": cutoff,
        }
        if invoice is None:
            invoice = Invoice.objects.create(number=number, **fields)
        else:
            for name, value in fields.items():
                setattr(invoice, name, value)
            invoice.save()
            invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice,
                    description=ln["description"],
                    quantity=ln["quantity"],
                    unit_price=ln["unit_price"],
                    amount=ln["amount"],
                    metric=ln["metric"],
                    dimension=ln["dimension"],
                    usage_month=ln["usage_month"],
                    pricing_version=ln["pricing_version"],
                    tier_from=ln["tier_from"],
                )
                for ln in lines
            ]
        )
        recalculate_invoice(invoice)
        audit.record(
            actor,
            "invoice.drafted_from_usage",
            invoice,
            {"number": number, "lines": len(lines), "total": str(invoice.total), "usage_cutoff": cutoff.isoformat()},
            tenant_id=tenant.pk,
        )
    return invoice


def issue_invoice(invoice: Invoice, *, actor=None) -> Invoice:
    """Draft -> issued; from then on the invoice is never changed (corrections go on later invoices)."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != InvoiceStatus.DRAFT:
            raise ValueError(f"invoice {locked.number} is {locked.status}, not a draft")
        locked.status = InvoiceStatus.ISSUED
        locked.issued_at = timezone.now()
        locked.save(update_fields=["status", "issued_at"])
        audit.record(
            actor,
            "invoice.issued",
            locked,
            {"number": locked.number, "total": str(locked.total)},
            tenant_id=locked.tenant_id,
        )
    return locked


def recompute_invoice(invoice: Invoice) -> dict:
    """Rebuild a usage invoice's lines and totals from its inputs; {"matches": bool, "stored": .., "computed": ..}."""
    if not invoice.from_usage:
        raise ValueError(f"invoice {invoice.number} was not made from usage")
    lines = invoice_lines(
        invoice.tenant_id, invoice.period_start, usage_after=invoice.usage_after, usage_cutoff=invoice.usage_cutoff
    )
    subtotal = sum((ln["amount"] for ln in lines), Decimal("0.00"))
    tax = (subtotal * invoice.tax_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    computed = {
        "lines": [(ln["description"], ln["quantity"], ln["unit_price"], ln["amount"]) for ln in lines],
        "subtotal": subtotal,
        "tax": tax,
        "total": subtotal + tax,
    }
    stored = {
        "lines": [(ln.description, ln.quantity, ln.unit_price, ln.amount) for ln in invoice.lines.order_by("id")],
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "total": invoice.total,
    }
    return {"matches": computed == stored, "stored": stored, "computed": computed}


def previous_month(today: dt.date) -> dt.date:
    first = today.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


def draft_monthly_invoices(*, today=None) -> list[Invoice]:
    """The beat job: once BILLING_GRACE_DAYS of this month have passed, draft last month's usage invoice of
    every active tenant (those with no usage get an invoice of zero). Safe to run again: drafts are rewritten,
    issued ones are left alone."""
    from apps.accounts.models import Tenant

    today = today or timezone.localdate()
    if today.day <= settings.BILLING_GRACE_DAYS:
        return []
    month = previous_month(today)
    done = []
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        existing = Invoice.objects.filter(number=f"U{month:%Y%m}-{tenant.pk:06d}").first()
        if existing and existing.status != InvoiceStatus.DRAFT:
            continue
        done.append(draft_usage_invoice(tenant, month))
    return done
