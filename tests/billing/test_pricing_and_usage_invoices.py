import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.billing import pricing, selectors, services
from apps.billing.models import Invoice, InvoiceStatus, PricingVersion

TZ = selectors.local_zone()


@pytest.fixture(autouse=True)
def _no_settling(settings):
    # Events of this test are recorded a moment before its invoices are drafted.
    settings.BILLING_CUTOFF_SETTLE_SECONDS = 0


def _at(day, hour=12):
    return dt.datetime(2026, 11, day, hour, tzinfo=TZ)


def _price(valid_from, unit_price, *, tiers=None, currency="TRY"):
    rates = tiers or [{"metric": "api_calls", "unit_price": unit_price}]
    return services.create_pricing_version(valid_from=valid_from, currency=currency, rates=rates)


@pytest.mark.django_db
def test_a_pricing_change_mid_month_splits_the_period(tenant_a):
    _price(dt.date(2026, 1, 1), "0.10")
    _price(dt.date(2026, 11, 16), "0.20")
    services.record_usage(tenant_a.pk, "api_calls", 100, key="a", occurred_at=_at(15, 23))  # the 15th, old price
    services.record_usage(tenant_a.pk, "api_calls", 50, key="b", occurred_at=_at(16, 0))  # the 16th, new price
    report = selectors.cost_report(tenant_a, pricing.parse_period("2026-11"))
    assert [(ln["pricing_version"], ln["quantity"], ln["amount"]) for ln in report["lines"]] == [
        (1, Decimal("100"), Decimal("10.00")),
        (2, Decimal("50"), Decimal("10.00")),
    ]
    assert report["total"] == Decimal("20.00") and report["currency"] == "TRY"


@pytest.mark.django_db
def test_tiers_count_on_across_a_pricing_change(tenant_a):
    tiers_v1 = [
        {"metric": "exports", "tier_from": 0, "unit_price": "5"},
        {"metric": "exports", "tier_from": 10, "unit_price": "4"},
    ]
    tiers_v2 = [
        {"metric": "exports", "tier_from": 0, "unit_price": "6"},
        {"metric": "exports", "tier_from": 10, "unit_price": "3"},
    ]
    _price(dt.date(2026, 1, 1), None, tiers=tiers_v1)
    _price(dt.date(2026, 11, 10), None, tiers=tiers_v2)
    services.record_usage(tenant_a.pk, "exports", 8, key="a", occurred_at=_at(5))
    services.record_usage(tenant_a.pk, "exports", 4, key="b", occurred_at=_at(12))  # units 9..12: 2 at 6, 2 at 3
    lines = selectors.cost_report(tenant_a, pricing.parse_period("2026-11"))["lines"]
    assert [(ln["pricing_version"], ln["tier_from"], ln["quantity"], ln["amount"]) for ln in lines] == [
        (1, Decimal(0), Decimal(8), Decimal("40.00")),
        (2, Decimal(0), Decimal(2), Decimal("12.00")),
        (2, Decimal(10), Decimal(2), Decimal("6.00")),
    ]


@pytest.mark.django_db
def test_a_pricing_version_is_never_edited_and_loading_the_file_twice_adds_nothing(tmp_path):
    path = tmp_path / "pricing.yaml"
    path.write_text(
        "versions:\n  - valid_from: 2026-01-01\n    currency: EUR\n"
        "    rates:\n      - {metric: api_calls, unit_price: '0.01'}\n"
    )
    call_command("load_pricing", file=str(path), stdout=StringIO())
    call_command("load_pricing", file=str(path), stdout=StringIO())
    assert PricingVersion.objects.get().currency == "EUR"
    with pytest.raises(ValueError):
        _price(dt.date(2026, 1, 1), "0.02")  # same start, other content: add a later version instead


@pytest.mark.django_db
def test_the_repositorys_price_list_loads():
    call_command("load_pricing", stdout=StringIO())
    version = PricingVersion.objects.get()
    assert version.currency == "TRY" and version.rates.count() >= 5


def test_period_parsing_refuses_nonsense():
    assert pricing.parse_period("2026-W47").start == dt.date(2026, 11, 16)
    assert pricing.parse_period("2026-Q4").end == dt.date(2027, 1, 1)
    for bad in ("", "2026-13", "2026-02-30", "last month", "2026-W99"):
        with pytest.raises(pricing.PeriodError):
            pricing.parse_period(bad)


@pytest.mark.django_db
def test_an_issued_invoice_recomputes_to_the_kurus_after_late_events_and_corrections(tenant_a):
    _price(
        dt.date(2026, 1, 1),
        None,
        tiers=[
            {"metric": "machine_hours", "unit_price": "12.3457"},
            {"metric": "jobs_processed", "dimension": "M-1", "unit_price": "2.50"},
            {"metric": "jobs_processed", "unit_price": "1.99"},
        ],
    )
    _price(
        dt.date(2026, 11, 20),
        None,
        tiers=[
            {"metric": "machine_hours", "unit_price": "13.0001"},
            {"metric": "jobs_processed", "unit_price": "2.10"},
        ],
    )
    hours = services.record_usage(tenant_a.pk, "machine_hours", "1.3333", key="h1", occurred_at=_at(3))[0]
    services.record_usage(tenant_a.pk, "machine_hours", "7.0007", key="h2", occurred_at=_at(25))
    for i in range(7):
        services.record_usage(
            tenant_a.pk,
            "jobs_processed",
            1,
            key=f"j{i}",
            occurred_at=_at(4 + 3 * i),
            dimension="M-1" if i % 2 else "M-2",
        )
    issued_at = dt.datetime(2026, 12, 4, 9, tzinfo=TZ)
    invoice = services.issue_invoice(services.draft_usage_invoice(tenant_a, dt.date(2026, 11, 1), now=issued_at))
    assert invoice.status == InvoiceStatus.ISSUED and invoice.total > 0
    stored_total = invoice.total

    # Later: a late November event and a correction taking back hours; neither edits the issued invoice.
    services.record_usage(tenant_a.pk, "jobs_processed", 1, key="late", occurred_at=_at(29), dimension="M-2")
    services.correct_usage(hours, Decimal("-1.0000"), key="fix-h1", note="sensor double count")
    out = StringIO()
    call_command("recompute_invoice", invoice.number, stdout=out)
    assert "recomputes exactly" in out.getvalue()
    invoice.refresh_from_db()
    assert invoice.total == stored_total
    result = services.recompute_invoice(invoice)
    assert result["matches"] and result["computed"]["total"] == stored_total

    december = services.draft_usage_invoice(tenant_a, dt.date(2026, 12, 1), now=dt.datetime(2027, 1, 5, tzinfo=TZ))
    lines = {(ln.usage_month, ln.metric): (ln.quantity, ln.amount) for ln in december.lines.all()}
    assert lines[("2026-11", "jobs_processed")] == (Decimal("1.0000"), Decimal("2.10"))  # late usage, v2 price
    assert lines[("2026-11", "machine_hours")] == (Decimal("-1.0000"), Decimal("-12.35"))  # a credit line, v1
    assert services.recompute_invoice(december)["matches"]


@pytest.mark.django_db
def test_recompute_notices_a_tampered_line(tenant_a):
    _price(dt.date(2026, 1, 1), "0.01")
    services.record_usage(tenant_a.pk, "api_calls", 333, key="a", occurred_at=_at(2))
    invoice = services.draft_usage_invoice(tenant_a, dt.date(2026, 11, 1), now=dt.datetime(2026, 12, 5, tzinfo=TZ))
    invoice.lines.update(unit_price=Decimal("0.02"))
    with pytest.raises(CommandError):
        call_command("recompute_invoice", str(invoice.pk), stdout=StringIO())


@pytest.mark.django_db
def test_a_tenant_with_no_usage_gets_an_invoice_of_zero(tenant_a, tenant_b):
    _price(dt.date(2026, 1, 1), "0.01")
    services.record_usage(tenant_a.pk, "api_calls", 10, key="a", occurred_at=_at(2))
    made = services.draft_monthly_invoices(today=dt.date(2026, 12, 4))
    empty = next(inv for inv in made if inv.tenant == tenant_b)
    assert empty.lines.count() == 0 and empty.total == Decimal("0.00") and empty.currency == "TRY"
    assert services.recompute_invoice(empty)["matches"]


@pytest.mark.django_db
def test_invoices_wait_for_the_grace_days_and_never_rewrite_an_issued_one(tenant_a, settings):
    settings.BILLING_GRACE_DAYS = 3
    assert services.draft_monthly_invoices(today=dt.date(2026, 12, 3)) == []
    [first] = services.draft_monthly_invoices(today=dt.date(2026, 12, 4))
    services.issue_invoice(first)
    assert services.draft_monthly_invoices(today=dt.date(2026, 12, 5)) == []
    with pytest.raises(ValueError):
        services.draft_usage_invoice(tenant_a, dt.date(2026, 11, 1))
    assert Invoice.objects.count() == 1


@pytest.mark.django_db
def test_a_metric_without_a_rate_in_the_version_in_force_costs_nothing(tenant_a):
    _price(dt.date(2026, 1, 1), None, tiers=[{"metric": "exports", "unit_price": "5"}])
    _price(dt.date(2026, 11, 10), None, tiers=[{"metric": "api_calls", "unit_price": "1"}])
    services.record_usage(tenant_a.pk, "exports", 2, key="a", occurred_at=_at(12))
    [line] = selectors.cost_report(tenant_a, pricing.parse_period("2026-11"))["lines"]
    assert (line["pricing_version"], line["quantity"], line["amount"]) == (2, Decimal(2), Decimal("0.00"))


@pytest.mark.django_db
def test_the_admin_issues_drafts_and_then_never_edits_them(client, role_users, tenant_a):
    from django.contrib.admin import helpers
    from django.urls import reverse

    from tests.conftest import verified_client

    _price(dt.date(2026, 1, 1), "0.01")
    invoice = services.draft_usage_invoice(tenant_a, dt.date(2026, 11, 1))
    verified_client(client, role_users["admin"])
    changelist = reverse("admin:billing_invoice_changelist")
    client.post(changelist, {"action": "issue_selected", helpers.ACTION_CHECKBOX_NAME: [invoice.pk]})
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    change = reverse("admin:billing_invoice_change", args=[invoice.pk])
    client.post(change, {"number": "X", "tax_rate": "0.5"})
    invoice.refresh_from_db()
    assert invoice.number != "X" and invoice.tax_rate == Decimal("0.20")
    response = client.post(
        changelist, {"action": "recompute_selected", helpers.ACTION_CHECKBOX_NAME: [invoice.pk]}, follow=True
    )
    assert "recomputes exactly" in response.content.decode() or "tam olarak" in response.content.decode()
