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
    assert "vendor/echarts/echarts.min.js" in html and "vendor/echarts/langTR.js" in html
    assert "cdn" not in html.lower()
    kpis = panel.get("/panel/data/kpis").json()["text"]
    assert kpis["count"] == "1.210"  # tr-TR thousands separator
    assert kpis["success-rate"] == "%71,4"  # 5 of 7 decided jobs, decimal comma, % in front
    assert kpis["p50"] == "4 sn"  # 4,000 ms as an analyst reads it


def test_filters_come_from_the_url_and_are_kept_in_links_and_the_export_form(panel, jobs):
    html = panel.get("/panel/?status=failed&machine=M02").content.decode()
    # The page's data fragments carry the same filters.
    assert 'data-src="/panel/data/kpis?status=failed&amp;machine=M02"' in html
    assert panel.get("/panel/data/kpis?status=failed&machine=M02").json()["text"]["count"] == "1"
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


# ---------------------------------------------------------------- issue 12: a Turkish panel, read all day


def _cells(html, table_id):
    """The text of every <td> of the table `table_id`, row by row."""
    import re

    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)[1:]]


def test_the_overview_page_comes_at_once_and_each_block_loads_its_own_fragment(panel, jobs):
    html = panel.get("/panel/").content.decode()
    # No figures in the page itself: every block starts loading, with a visible message and an error state.
    assert html.count('data-state="loading"') == 6
    assert 'id="kpi-count" data-key="count">…<' in html
    assert html.count("Yükleniyor…") == 6 and html.count("Veriler yüklenemedi.") == 6
    for name in ("kpis", "breakdowns", "trend"):
        assert f'data-src="/panel/data/{name}?' in html
    # Nothing inline for the Content-Security-Policy: data in json_script blocks, code in static files.
    assert "<script>" not in html and " onclick=" not in html and " style=" not in html
    breakdowns = panel.get("/panel/data/breakdowns").json()
    assert {r["code"]: r["count"] for r in breakdowns["by_status"]} == {
        "succeeded": 5,
        "failed": 2,
        "cancelled": 1,
        "running": 1,
        "queued": 1,
    }
    assert breakdowns["by_machine"]["categories"] == ["M01", "M02"]
    trend = panel.get("/panel/data/trend").json()
    assert [d["day"] for d in trend["trend"]] == [f"2026-11-0{d}" for d in range(2, 7)]
    assert sum(b["count"] for b in trend["latency"]) == 8


def test_the_fragments_are_signed_in_capability_checked_and_tenant_scoped(
    client, panel, role_users, jobs, other_tenant_job
):
    # Tenant B's failed job never counts for tenant A's analyst.
    assert panel.get("/panel/data/kpis").json()["values"]["failed"] == 2
    assert sum(r["count"] for r in panel.get("/panel/data/breakdowns").json()["by_status"]) == 10
    assert panel.get("/panel/data/kpis?tenant=bogazici").status_code == 422
    for name in ("kpis", "breakdowns", "trend"):
        anonymous = client.get(f"/panel/data/{name}")
        assert anonymous.status_code == 401 and anonymous["Content-Type"] == "application/problem+json"
        operator = verified_client(Client(), role_users["operator"]).get(f"/panel/data/{name}")
        assert operator.status_code == 403 and operator.json()["type"].endswith("permission-denied")
        bad = panel.get(f"/panel/data/{name}?date_from=31.02.2026")
        assert bad.status_code == 422
        assert bad.json()["errors"]["date_from"] == ["Tarihi gg.aa.yyyy biçiminde girin, ör. 15.11.2026."]


def test_the_detail_table_shows_labels_names_istanbul_dates_and_readable_durations(panel, jobs, tenant_a, catalog):
    from .conftest import make_job

    make_job(tenant_a, catalog, 7, 9, "failed", "p1", "flans", 4_606_218)
    html = panel.get("/panel/detail/?limit=20").content.decode()
    rows = _cells(html, "detail-table")
    newest = rows[0]
    assert newest[1] == "Anadolu Döküm"  # the tenant's name, not its slug
    assert newest[5] == "Başarısız"  # the status' label, not `failed`
    assert newest[6] == "07.11.2026 09:00"  # dd.mm.yyyy HH:MM on Istanbul's clock
    assert newest[7] == "07.11.2026 10:16"
    assert newest[8] == "1 sa 16 dk"
    statuses = {r[5] for r in rows}
    assert statuses == {"Başarılı", "Başarısız", "İptal edildi", "Çalışıyor", "Sırada"}
    assert {r[1] for r in rows} == {"Anadolu Döküm"}
    durations = {r[8] for r in rows}
    assert {"1 sn", "9 sn", "-"} <= durations
    for raw in ("failed", "succeeded", "queued", "anadolu", " ms<", "Kas 2026"):
        assert raw not in "".join(c for r in rows for c in r), raw


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "-"),
        (0, "0 ms"),
        (850, "850 ms"),
        (1000, "1 sn"),
        (1500, "1,5 sn"),
        (59_999, "59,9 sn"),
        (60_000, "1 dk"),
        (1_265_401, "21 dk 5 sn"),
        (3_600_000, "1 sa"),
        (4_606_218, "1 sa 16 dk"),
        (26 * 3_600_000 + 5 * 60_000, "1 gün 2 sa"),
        (1200 * 86_400_000, "1.200 gün"),
    ],
)
def test_durations_read_as_analysts_read_them(ms, text):
    from django.utils import translation

    from apps.reporting import display

    with translation.override("tr"):
        assert display.duration(ms) == text


def test_dates_are_typed_as_dd_mm_yyyy_and_a_wrong_one_is_explained(panel, jobs):
    html = panel.get("/panel/?date_from=03.11.2026&date_to=04.11.2026").content.decode()
    # Text inputs, not <input type=date> (which follows the browser's locale: mm/dd/yyyy in English).
    assert 'type="date"' not in html
    assert 'name="date_from" id="filter-date-from" value="03.11.2026" placeholder="gg.aa.yyyy"' in html
    assert panel.get("/panel/data/kpis?date_from=03.11.2026&date_to=04.11.2026").json()["values"]["count"] == 4
    # An old link with ISO dates still works, and the input shows the date the Turkish way.
    html = panel.get("/panel/?date_from=2026-11-03").content.decode()
    assert 'value="03.11.2026"' in html
    for bad in ("2026/11/03", "31.02.2026", "3.11", "11/03/2026"):
        html = panel.get(f"/panel/?date_from={bad}").content.decode()
        assert "Başlangıç: Tarihi gg.aa.yyyy biçiminde girin, ör. 15.11.2026." in html, bad
        assert 'aria-invalid="true"' in html and "data-src=" not in html
    html = panel.get("/panel/detail/?date_from=05.11.2026&date_to=01.11.2026").content.decode()
    assert "Bitiş: Bitiş tarihi başlangıç tarihinden önce olamaz." in html


@pytest.mark.parametrize("page", [str(10**30), "0", "-1", "abc", "1e9"])
def test_an_absurd_detail_page_is_a_400_with_a_message_never_a_500(panel, jobs, page):
    response = panel.get(f"/panel/detail/?page={page}")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Bazı filtreler geçersiz" in html and "Sayfa:" in html
    assert 'id="detail-table"' not in html


def test_the_last_allowed_detail_page_is_empty_not_an_error(panel, jobs):
    from apps.reporting.serializers import PANEL_MAX_PAGE

    response = panel.get(f"/panel/detail/?page={PANEL_MAX_PAGE}")
    assert response.status_code == 200
    assert "Bu filtrelere uyan iş yok." in response.content.decode()


def test_an_english_browser_still_gets_one_turkish_locale(panel, jobs, tenant_a, catalog):
    from apps.jobs.models import Job

    Job.objects.bulk_create(
        Job(tenant=tenant_a, post=catalog["p1"], machine=catalog["m1"], model_type=catalog["flans"])
        for _ in range(1200)
    )
    english = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
    response = panel.get("/panel/", **english)
    html = response.content.decode()
    assert '<html lang="tr">' in html and 'data-locale="tr-TR"' in html and response["Content-Language"] == "tr"
    assert "İş raporu" in html and "Job report" not in html
    kpis = panel.get("/panel/data/kpis", **english).json()["text"]
    assert kpis["count"] == "1.210" and kpis["success-rate"] == "%71,4"
    html = panel.get("/panel/detail/?limit=5&status=succeeded", **english).content.decode()
    assert "Başarılı" in html and "Succeeded" not in html
    assert panel.get("/panel/alerts/", **english).content.decode().count("Uyarı kuralları") >= 1


def test_the_exports_list_shows_filters_in_turkish(panel, analyst, tenant_a):
    ReportExport.objects.create(
        requested_by=analyst,
        format="csv",
        filters={"status": ["failed", "queued"], "tenant": "anadolu", "date_from": "2026-11-01", "machine": "M02"},
    )
    ReportExport.objects.create(requested_by=analyst, format="json", filters={})
    html = panel.get("/panel/exports/").content.decode()
    filters = [row[2] for row in _cells(html, "exports-table")]
    text = " ".join(filters)
    assert "Durum:</span> Başarısız, Sırada" in text
    assert "Firma:</span> Anadolu Döküm" in text
    assert "Başlangıç:</span> 01.11.2026" in text
    assert "Makine:</span> M02" in text
    assert "tüm işler" in text
    assert "['failed'" not in html and "status=[" not in html and "anadolu" not in text


def test_alert_rules_and_history_read_in_turkish_with_the_failure_reason(panel, tenant_a):
    import datetime as dt

    from django.utils import timezone

    from apps.reporting.models import AlertChannel, AlertNotice, AlertRule

    channel = AlertChannel.objects.create(tenant=tenant_a, name="Bakım", kind="email", target="a@example.com")
    slow = AlertRule.objects.create(
        tenant=tenant_a,
        name="Yavaş işler",
        metric="p95_ms",
        threshold=4_606_218,
        window_minutes=100_000,
        repeat_every_minutes=1440,
        severity="warning",
        breached_since=dt.datetime(2026, 11, 15, 1, 41, tzinfo=dt.UTC),
    )
    AlertRule.objects.create(tenant=tenant_a, name="Hatalar", metric="failure_rate", threshold=12.5, severity="info")
    AlertNotice.objects.create(
        rule=slow,
        channel=channel,
        dedup_key="k1",
        kind="firing",
        severity="warning",
        status="failed",
        value=5_000_000,
        created_at=timezone.now(),
        last_error="connection refused by the mail server (EMAIL_HOST)",
    )
    html = panel.get("/panel/alerts/").content.decode()
    rules = {r[0]: r for r in _cells(html, "rules-table")}
    assert rules["Yavaş işler"][2] == "P95 süresi &gt; 1 sa 16 dk (son 100.000 dk)"
    assert rules["Yavaş işler"][4] == "her 1.440 dk"
    assert "15.11.2026 04:41" in rules["Yavaş işler"][6]
    assert rules["Hatalar"][2] == "Hata oranı &gt; %12,5 (son 15 dk)"
    (notice,) = _cells(html, "history-table")
    assert notice[4] == "Başarısız" and notice[5] == "1 sa 23 dk" and notice[6] == "0"
    assert notice[7] == "connection refused by the mail server (EMAIL_HOST)"
