"""The break queue in Chromium as an operator: Turkish texts, buckets, a bulk assignment; a screenshot to look at."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from apps.recon import services
from apps.recon.models import Break
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

from .conftest import csv_bytes, load

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "test" / "screenshots" / "recon"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


def test_the_break_queue_in_chromium(serial_live_server, monkeypatch, profile_a, jobs_a, tenant_a):
    from playwright.sync_api import sync_playwright

    operator = make_user("operatör", roles=["operator"], tenants=[tenant_a])
    operator.set_password(PASSWORD)
    operator.save()
    device = confirmed_device(operator)
    services.run(
        load(
            profile_a,
            csv_bytes(
                "ERP-1,M1,MT1,,running,45,2026-11-30T08:00:00Z,",
                "ERP-2,M1,MT1,,TAMAM,100,,",
                "ERP-9,M1,MT1,,queued,0,,",
                "ERP-9,M1,MT1,,queued,0,,",
                "ERP-8,M1,MT1,,queued,0,,",
            ),
        )
    )
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    url = serial_live_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_context(locale="tr-TR", viewport={"width": 1366, "height": 900}).new_page()
        page.goto(f"{url}/panel/recon/breaks/")
        page.fill("input[name=username]", operator.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.fill("input[name=token]", totp_code(device))
        page.click("input[type=submit]")
        page.wait_for_url(f"{url}/panel/recon/breaks/")
        assert page.locator("h1").inner_text() == "Mutabakat farkları"
        assert page.locator("#breaks-table tbody tr").count() == 6
        assert "0-1 gün" in page.locator(".kpis").inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "breaks-1366.png"), full_page=True)
        page.locator("#breaks-table tbody input[type=checkbox]").first.check()
        page.locator("#breaks-table tbody input[type=checkbox]").nth(1).check()
        page.fill("#bulk-assign input[name=assignee]", operator.username)
        page.click("#bulk-assign button[type=submit]")
        page.wait_for_load_state()
        assert "2 fark atandı." in page.locator(".messages").inner_text()
        page.goto(f"{url}/panel/recon/breaks/?kind=FIELD_MISMATCH&kind=STATUS_MISMATCH")
        assert page.locator("#breaks-table tbody tr").count() == 3  # ERP-2 differs in status and start time
        page.goto(f"{url}/panel/recon/runs/")
        page.screenshot(path=str(SCREENSHOTS / "runs-1366.png"), full_page=True)
        browser.close()
    assert Break.objects.filter(assignee=operator).count() == 2
