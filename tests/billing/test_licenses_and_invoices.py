import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.billing import services
from apps.billing.models import License, LicenseState
from tests import factories
from tests.conftest import verified_client

CHANGELIST = reverse("admin:billing_license_changelist")


@pytest.mark.django_db
def test_extend_by_months_keeps_the_day_and_handles_month_ends(tenant_a):
    lic = factories.LicenseFactory(tenant=tenant_a, valid_until=dt.date(2027, 1, 31))
    services.extend_licenses([lic], months=1)
    lic.refresh_from_db()
    assert lic.valid_until == dt.date(2027, 2, 28)


@pytest.mark.django_db
def test_extending_an_expired_license_into_the_future_reactivates_it(tenant_a):
    lic = factories.LicenseFactory(
        tenant=tenant_a, valid_until=dt.date.today() - dt.timedelta(days=3), state=LicenseState.EXPIRED
    )
    services.extend_licenses([lic], days=30)
    lic.refresh_from_db()
    assert lic.state == LicenseState.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs", [{}, {"days": -1}, {"months": 0, "days": 0}])
def test_extend_refuses_a_non_positive_period(kwargs, tenant_a):
    with pytest.raises(ValueError):
        services.extend_licenses([factories.LicenseFactory(tenant=tenant_a)], **kwargs)


@pytest.mark.django_db
def test_expire_licenses_marks_only_active_past_end(tenant_a):
    today = dt.date(2026, 11, 22)
    past = factories.LicenseFactory(tenant=tenant_a, valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 11, 21))
    current = factories.LicenseFactory(tenant=tenant_a, valid_from=dt.date(2026, 1, 1), valid_until=today)
    revoked = factories.LicenseFactory(
        tenant=tenant_a, valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 2, 1), state=LicenseState.REVOKED
    )
    assert services.expire_licenses(today=today) == 1
    assert services.expire_licenses(today=today) == 0, "safe to run twice"
    states = dict(License.objects.values_list("pk", "state"))
    assert states == {past.pk: "expired", current.pk: "active", revoked.pk: "revoked"}


@pytest.mark.django_db
def test_invoice_totals_are_the_sum_of_lines_with_tax(tenant_a):
    invoice = factories.InvoiceFactory(tenant=tenant_a, tax_rate=Decimal("0.20"))
    factories.InvoiceLineFactory(invoice=invoice, quantity=Decimal("3"), unit_price=Decimal("99.99"))
    factories.InvoiceLineFactory(invoice=invoice, quantity=Decimal("0.5"), unit_price=Decimal("10.01"))
    services.recalculate_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.subtotal == Decimal("304.98")  # 299.97 + 5.01 (5.005 rounds half up)
    assert invoice.tax == Decimal("61.00")
    assert invoice.total == Decimal("365.98")


@pytest.mark.django_db
def test_bulk_extend_asks_then_extends_and_lists_revoked_ones(client, role_users, tenant_a):
    verified_client(client, role_users["admin"])
    good = factories.LicenseFactory(tenant=tenant_a, valid_until=dt.date(2027, 3, 10))
    revoked = factories.LicenseFactory(tenant=tenant_a, valid_until=dt.date(2027, 3, 10), state=LicenseState.REVOKED)
    selection = {"action": "extend_selected", helpers.ACTION_CHECKBOX_NAME: [good.pk, revoked.pk]}
    ask = client.post(CHANGELIST, selection)
    assert ask.status_code == 200 and b'name="amount"' in ask.content
    good.refresh_from_db()
    assert good.valid_until == dt.date(2027, 3, 10), "nothing changes before confirmation"
    done = client.post(CHANGELIST, {**selection, "confirm": "yes", "amount": "2", "unit": "months"}, follow=True)
    good.refresh_from_db()
    revoked.refresh_from_db()
    assert good.valid_until == dt.date(2027, 5, 10)
    assert revoked.valid_until == dt.date(2027, 3, 10)
    texts = [str(m) for m in get_messages(done.wsgi_request)]
    assert any(str(revoked) in t for t in texts), texts


@pytest.mark.django_db
def test_bulk_extend_rejects_a_bad_amount_and_changes_nothing(client, role_users, tenant_a):
    verified_client(client, role_users["admin"])
    lic = factories.LicenseFactory(tenant=tenant_a, valid_until=dt.date(2027, 3, 10))
    response = client.post(
        CHANGELIST,
        {"action": "extend_selected", helpers.ACTION_CHECKBOX_NAME: [lic.pk], "confirm": "yes", "amount": "-3",
         "unit": "days"},
    )  # fmt: skip
    assert response.status_code == 200
    assert b"errorlist" in response.content
    lic.refresh_from_db()
    assert lic.valid_until == dt.date(2027, 3, 10)
