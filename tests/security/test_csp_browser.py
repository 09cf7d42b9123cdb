"""issue 11: the Content-Security-Policy breaks nothing. Headless Chromium loads the admin (sign-in, index, a
changelist with its action JavaScript, a change form), the panel with its ECharts charts, and Swagger UI;
the browser reports no CSP violation and the pages still draw."""

import os
from pathlib import Path

import pytest
from django.test import Client

from tests import factories
from tests.conftest import make_user, verified_client

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]

# Runs before any page script (Playwright injects it outside the page's policy) and keeps every violation.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e =>
  window.__cspViolations.push(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber));
"""


@pytest.fixture
def browser(live_server, serial_live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def signed_in_page(browser, live_server, user=None):
    context = browser.new_context(locale="tr-TR", viewport={"width": 1280, "height": 900})
    if user is not None:
        client = verified_client(Client(), user)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.console_problems = []
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and "Content Security Policy" in m.text
        and page.console_problems.append(m.text),
    )  # fmt: skip
    page.on("pageerror", lambda exc: page.console_problems.append(str(exc)))
    return page


def violations(page) -> list:
    return page.evaluate("window.__cspViolations") + page.console_problems


def visit(page, url):
    response = page.goto(url)
    assert response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")


def test_the_admin_and_swagger_ui_work_under_the_policy(live_server, browser, tenant_a):
    anonymous = signed_in_page(browser, live_server)
    visit(anonymous, f"{live_server.url}/admin/login/")
    assert anonymous.locator("input[name=username]").is_visible()
    assert violations(anonymous) == []

    job = factories.JobFactory(tenant=tenant_a)
    page = signed_in_page(browser, live_server, make_user("csp_root", superuser=True))
    for path in ("/admin/", "/admin/jobs/job/", f"/admin/jobs/job/{job.pk}/change/", "/admin/accounts/user/add/"):
        visit(page, f"{live_server.url}{path}")
        assert violations(page) == [], path
    # The changelist's action bar is driven by admin/js/actions.js: selecting a row counts it.
    visit(page, f"{live_server.url}/admin/jobs/job/")
    page.locator("input.action-select").first.check()
    assert "1" in page.locator(".action-counter").inner_text()

    visit(page, f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert page.locator(".opblock").count() > 5
    assert violations(page) == []


def test_the_panel_draws_its_charts_under_the_policy(live_server, browser, tenant_a):
    post = factories.PostFactory(tenant=tenant_a)
    for status in ("succeeded", "failed", "succeeded"):
        factories.JobFactory(tenant=tenant_a, post=post, machine=post.machine, status=status, duration_ms=1000)
    # A superuser: transactional tests flush the role groups the migrations made (tests/reporting restores them).
    page = signed_in_page(browser, live_server, make_user("csp_panel", superuser=True, tenants=[tenant_a]))
    visit(page, f"{live_server.url}/panel/")
    page.wait_for_selector("#chart-status[data-rendered=true] canvas")
    page.hover("#chart-status canvas")  # a tooltip writes styled HTML into the page
    for path in ("/panel/detail/", "/panel/exports/", "/panel/alerts/"):
        visit(page, f"{live_server.url}{path}")
    assert violations(page) == []
