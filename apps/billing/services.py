"""Writes to licenses and invoices: extensions, expiry and invoice totals."""

from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit

from .models import Invoice, InvoiceLine, License, LicenseState

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
