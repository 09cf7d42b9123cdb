import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse

from apps.billing import selectors, services
from tests.conftest import make_user, verified_client

TZ = selectors.local_zone()
API = "/api/v1/billing/usage"


@pytest.fixture
def usage(tenant_a, tenant_b):
    services.create_pricing_version(
        valid_from=dt.date(2026, 1, 1),
        rates=[{"metric": "exports", "unit_price": "5"}, {"metric": "jobs_processed", "unit_price": "2.5"}],
    )
    services.record_usage(tenant_a.pk, "exports", 3, key="a", occurred_at=dt.datetime(2026, 11, 3, 9, tzinfo=TZ))
    services.record_usage(
        tenant_a.pk,
        "jobs_processed",
        2,
        key="b",
        occurred_at=dt.datetime(2026, 11, 4, tzinfo=TZ),
        dimension='=HYPERLINK("x")',
    )
    services.record_usage(tenant_b.pk, "exports", 100, key="c", occurred_at=dt.datetime(2026, 11, 3, tzinfo=TZ))


@pytest.mark.django_db
def test_the_usage_api_answers_a_tenants_cost_in_decimal_strings(client, role_users, usage):
    verified_client(client, role_users["admin"])
    body = client.get(API, {"tenant": "anadolu", "period": "2026-11"}).json()
    assert body["total"] == "20.00" and body["currency"] == "TRY"
    assert {m["metric"]: m["amount"] for m in body["metrics"]} == {"exports": "15.00", "jobs_processed": "5.00"}
    assert body["daily"]["cost"]["exports"][2] == "15.00"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"tenant": "bogazici", "period": "2026-11"},
        {"tenant": "anadolu", "period": "11/2026"},
        {"tenant": "anadolu"},
        {"tenant": "anadolu", "period": "0001-01"},
    ],
)
def test_the_usage_api_refuses_other_tenants_and_bad_periods_as_problems(client, role_users, usage, query):
    verified_client(client, role_users["admin"])
    response = client.get(API, query)
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.django_db
def test_the_usage_api_needs_the_capability(client, role_users, usage):
    verified_client(client, role_users["operator"])
    assert client.get(API, {"tenant": "anadolu", "period": "2026-11"}).status_code == 403


@pytest.mark.django_db
def test_the_turkish_panel_page_shows_the_cost_and_its_chart_data(client, role_users, usage):
    verified_client(client, role_users["admin"])
    response = client.get(reverse("billing:usage"), {"tenant": "anadolu", "period": "2026-11"})
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Language"] == "tr"
    assert "Kullanım ve maliyet" in text and 'id="usage-chart"' in text and "echarts.min.js" in text
    assert "20,00 TRY" in text


@pytest.mark.django_db
def test_the_csv_download_is_formula_safe_and_the_json_one_exact(client, role_users, usage):
    verified_client(client, role_users["admin"])
    query = {"tenant": "anadolu", "period": "2026-11"}
    rows = list(
        csv.reader(io.StringIO(client.get(reverse("billing:usage-export", args=["csv"]), query).content.decode()))
    )
    assert ["total", "", "", "", "", "", "", "20.00"] in rows
    assert any(row[1] == '\'=HYPERLINK("x")' for row in rows)
    body = json.loads(client.get(reverse("billing:usage-export", args=["json"]), query).content)
    assert body["total"] == "20.00"


@pytest.mark.django_db
def test_the_pdf_download_is_a_pdf_with_the_total(client, role_users, usage):
    import pypdfium2

    verified_client(client, role_users["admin"])
    response = client.get(reverse("billing:usage-export", args=["pdf"]), {"tenant": "anadolu", "period": "2026-11"})
    assert response["Content-Type"] == "application/pdf"
    pdf = pypdfium2.PdfDocument(response.content)
    text = pdf[0].get_textpage().get_text_bounded()
    assert "Kullanım ve maliyet" in text and "20,00 TRY" in text


@pytest.mark.django_db
def test_the_admin_cost_report_lists_the_lines(client, role_users, usage):
    verified_client(client, role_users["admin"])
    response = client.get(reverse("admin:billing_cost_report"), {"tenant": "anadolu", "period": "2026-11"})
    assert response.status_code == 200 and b"20,00 TRY" in response.content


@pytest.mark.django_db
def test_a_user_without_tenants_sees_no_usage_of_others(client, usage):
    stranger = make_user("stranger", roles=["admin"])
    verified_client(client, stranger)
    assert client.get(API, {"tenant": "anadolu", "period": "2026-11"}).status_code == 422
