"""The dashboards in a real browser: Debian's Chromium, headless, driven by Playwright against a live server.

An analyst signs in through the admin's password + TOTP steps, sees the charts drawn with data, changes a
filter and sees the numbers change, starts an export and downloads the right file; no console errors,
and the overview fits a tablet's width.
"""

import csv
import io
import os
from pathlib import Path

import pytest

from apps.accounts.capabilities import ANALYST
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

from .conftest import JOB_TABLE, make_job

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


@pytest.fixture
def browser_analyst(tenant_a, catalog):
    for row in JOB_TABLE:
        make_job(tenant_a, catalog, *row)
    user = make_user("analist_tarayici", roles=[ANALYST], tenants=[tenant_a])
    return user, confirmed_device(user)


@pytest.fixture
def page(serial_live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(accept_downloads=True, locale="tr-TR", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.errors = []
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        yield page
        browser.close()


def kpi(page, name):
    # The key figures arrive from their own fragment after the page shows (docs/reporting.md).
    page.wait_for_selector(".kpis[data-state=ready]")
    return page.locator(f"#kpi-{name}").inner_text()


def chart_points(page, chart_id):
    return page.evaluate(
        """id => { const c = echarts.getInstanceByDom(document.getElementById(id));
                   return c.getOption().series.reduce((n, s) => n + s.data.length, 0); }""",
        chart_id,
    )


def test_an_analyst_reads_filters_and_exports_in_chromium(live_server, browser_analyst, page, tmp_path):
    user, device = browser_analyst
    page.goto(f"{live_server.url}/panel/")
    assert "/admin/login/" in page.url
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.fill("input[name=token]", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/panel/")

    # Charts drawn (ECharts canvases) with data in every one.
    for chart in ("chart-trend", "chart-status", "chart-machine", "chart-post", "chart-latency"):
        page.wait_for_selector(f"#{chart}[data-rendered=true] canvas")
        assert chart_points(page, chart) > 0, chart
    assert kpi(page, "count") == "10"
    assert kpi(page, "success-rate") == "%71,4"

    # Change a filter: the URL carries it and the numbers follow.
    page.select_option("#filter-status", "failed")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/panel/?*status=failed*")
    assert kpi(page, "count") == "2"
    assert kpi(page, "failed") == "2"

    # Export what is on screen and download it.
    page.select_option("#export-format", "csv")
    page.click("#export-start")
    page.wait_for_url(f"{live_server.url}/panel/exports/")
    link = page.locator("a.download").first
    link.wait_for()
    with page.expect_download() as download_info:
        link.click()
    target = tmp_path / "export.csv"
    download_info.value.save_as(target)
    rows = [r for r in csv.reader(io.StringIO(target.read_text(encoding="utf-8"))) if not r[0].startswith("#")]
    assert rows[0][0] == "İş kimliği"
    status_code, status_label = rows[0].index("Durum kodu"), rows[0].index("Durum")
    assert sorted(r[status_code] for r in rows[1:]) == ["failed", "failed"]
    assert {r[status_label] for r in rows[1:]} == {"Başarısız"}

    # A tablet: the overview fits without sideways scrolling.
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(f"{live_server.url}/panel/")
    page.wait_for_selector("#chart-trend[data-rendered=true] canvas")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768

    assert page.errors == []
