"""The /panel/ pages, rendered by Django: sign-in through the admin's MFA steps, capabilities, Turkish
formats, filters in the URL, role-gated navigation, exports started from the page, ECharts as a static file."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.staticfiles import finders
from django.test import Client

from apps.reporting.models import ReportExport
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(analyst):
    return verified_client(Client(), analyst)


def test_an_unverified_visitor_is_sent_to_the_mfa_sign_in_and_back(client, analyst):
    response = client.get("/panel/?status=failed")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fpanel%2F%3Fstatus%3Dfailed"
    client.force_login(analyst)  # password only, no TOTP yet
    assert client.get("/panel/")["Location"].startswith("/admin/login/")


def test_a_role_without_the_report_capability_gets_403(role_users):
    operator = verified_client(Client(), role_users["operator"])
    assert operator.get("/panel/").status_code == 403
    assert operator.get("/panel/exports/").status_code == 403


def test_the_overview_is_turkish_with_turkish_numbers(panel, jobs, tenant_a, catalog):
    from apps.jobs.models import Job

    # 1,200 queued jobs in one insert, for a count with a thousands separator.
    Job.objects.bulk_create(
        Job(tenant=tenant_a, post=catalog["p1"], machine=catalog["m1"], model_type=catalog["flans"])
        for _ in range(1200)
    )
    html = panel.get("/panel/").content.decode()
    assert '<html lang="tr">' in html
    assert "İş raporu" in html and "Başarı oranı" in html and "Günlük iş sayısı" in html
    assert 'id="kpi-count">1.210<' in html  # tr-TR thousands separator
    assert 'id="kpi-success-rate">%71,4<' in html  # 5 of 7 decided jobs, decimal comma, % in front
    assert 'id="kpi-p50">4.000 ms<' in html
    assert "vendor/echarts/echarts.min.js" in html and "vendor/echarts/langTR.js" in html
    assert "cdn" not in html.lower()


def test_filters_come_from_the_url_and_are_kept_in_links_and_the_export_form(panel, jobs):
    html = panel.get("/panel/?status=failed&machine=M02").content.decode()
    assert 'id="kpi-count">1<' in html
    assert 'href="/panel/detail/?status=failed&amp;machine=M02"' in html
    assert '<input type="hidden" name="machine" value="M02">' in html
    assert '<input type="hidden" name="status" value="failed">' in html


def test_a_bad_filter_shows_a_message_not_an_error_page(panel, jobs):
    response = panel.get("/panel/?date_from=2026-11-09&date_to=2026-11-01")
    assert response.status_code == 200
    assert "Bazı filtreler geçersiz" in response.content.decode()


def test_the_detail_page_pages_through_a_snapshot(panel, jobs):
    html = panel.get("/panel/detail/?limit=4").content.decode()
    assert html.count("<tr><td>") == 4
    assert "as_of=" in html and "page=2" in html


def test_navigation_shows_only_what_the_role_may_open(panel, tenant_a):
    html = panel.get("/panel/").content.decode()
    assert 'href="/panel/alerts/"' in html and 'href="/panel/exports/"' in html
    # A reader with the report capability only: no export or alert links, and their pages are 403.
    group = Group.objects.create(name="report readers")
    group.permissions.set([Permission.objects.get(codename="view_report")])
    user = make_user("okuyucu", tenants=[tenant_a])
    user.groups.add(group)
    reader = verified_client(Client(), user)
    html = reader.get("/panel/").content.decode()
    assert 'href="/panel/alerts/"' not in html and 'href="/panel/exports/"' not in html
    assert reader.get("/panel/alerts/").status_code == 403


def test_an_export_started_from_the_page_is_listed_with_its_link(panel, jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = panel.post("/panel/exports/", {"format": "csv", "status": "failed"})
    assert response.status_code == 302
    export = ReportExport.objects.get()
    assert export.filters == {"status": ["failed"]} and export.rows_written == 2
    html = panel.get("/panel/exports/").content.decode()
    assert f"/reports/export/{export.id}/download?token=" in html
    status = panel.get(f"/panel/exports/{export.id}/status").json()
    assert status["status"] == "done" and status["row_count"] == 2 and status["download_url"]


def test_a_refused_export_is_explained_on_the_page(panel, jobs, monkeypatch):
    from apps.reporting import constants

    monkeypatch.setattr(constants, "XLSX_MAX_ROWS", 3)
    response = panel.post("/panel/exports/", {"format": "xlsx"}, follow=True)
    assert "CSV olarak dışa aktarın" in response.content.decode()
    assert not ReportExport.objects.exists()


def test_alert_pages_list_rules_channels_and_history(panel, tenant_a, tenant_b):
    from apps.reporting.models import AlertChannel, AlertRule

    mine = AlertChannel.objects.create(tenant=tenant_a, name="Gece vardiyası", kind="email", target="a@example.com")
    AlertChannel.objects.create(tenant=tenant_b, name="Başka firma kanalı", kind="email", target="b@example.com")
    rule = AlertRule.objects.create(
        tenant=tenant_a, name="Yüksek P95", metric="p95_ms", threshold=60000, severity="critical"
    )
    rule.channels.set([mine])
    html = panel.get("/panel/alerts/").content.decode()
    assert "Yüksek P95" in html and "Gece vardiyası" in html
    assert "Başka firma kanalı" not in html


def test_echarts_comes_from_node_modules_as_a_static_file():
    found = finders.find("vendor/echarts/echarts.min.js")
    assert found and found.endswith("node_modules/echarts/dist/echarts.min.js")
    assert finders.find("vendor/echarts/langTR.js")
