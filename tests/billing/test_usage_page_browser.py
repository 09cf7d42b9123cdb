"""The Turkish cost page in Chromium under the real Content-Security-Policy: the chart draws from the page's
own data, nothing is refused, no script error. The screenshot goes to var/test/screenshots/billing-usage.png."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.conf import settings

from apps.billing import selectors, services
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


def test_the_cost_page_draws_its_chart_under_the_csp(serial_live_server, monkeypatch, tenant_a):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    tz = selectors.local_zone()
    services.create_pricing_version(
        valid_from=dt.date(2026, 1, 1),
        rates=[{"metric": "jobs_processed", "unit_price": "2.5"}, {"metric": "machine_hours", "unit_price": "12"}],
    )
    services.create_pricing_version(
        valid_from=dt.date(2026, 11, 16), rates=[{"metric": "jobs_processed", "unit_price": "3"}]
    )
    for day in range(1, 31):
        at = dt.datetime(2026, 11, day, 10, tzinfo=tz)
        services.record_usage(tenant_a.pk, "jobs_processed", 40 + day, key=f"j{day}", occurred_at=at, dimension="M-1")
        services.record_usage(tenant_a.pk, "machine_hours", day % 7, key=f"h{day}", occurred_at=at, dimension="M-1")
    user = make_user("finance", roles=["admin"], tenants=[tenant_a])
    user.set_password(PASSWORD)
    user.save()
    device = confirmed_device(user)
    url = f"{serial_live_server.url}/panel/billing/usage/?tenant=anadolu&period=2026-11"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_context(locale="tr-TR", viewport={"width": 1366, "height": 900}).new_page()
        problems = []
        page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(url)
        page.fill("input[name=username]", "finance")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.fill("input[name=token]", totp_code(device))
        page.click("input[type=submit]")
        page.wait_for_url(url)
        page.wait_for_selector("#chart-usage-cost[data-rendered=true] canvas", timeout=15_000)
        total = page.inner_text("#usage-total")
        screenshots = Path(settings.BASE_DIR) / "var" / "test" / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshots / "billing-usage.png"), full_page=True)
        browser.close()
    assert problems == []
    assert total.endswith(" TRY") and "," in total
