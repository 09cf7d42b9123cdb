"""The admin in a real browser, as each demo role: Debian's Chromium, headless, driven by Playwright.

Each role signs in with its password and TOTP code on a small seeded database and visits the main admin
pages it may see, at 1440 and 1920 px; a screenshot of each lands in var/test/screenshots/admin/. The
pages read in Turkish: no capital dotless I where İ is meant, Turkish sidebar names, no raw `None`, and
the jobs changelist fits 1440 px.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from apps.accounts import services as account_services
from apps.accounts.capabilities import ROLES
from apps.accounts.models import Tenant
from apps.audit import services as audit
from apps.demo.seed import seed_demo
from apps.erp.models import ErpSync, IntegrationProfile
from apps.jobs.models import Job
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

from .test_admin_turkish import ENGLISH_APP_NAMES, _turkish_msgstrs, dotless_capitals

CHROMIUM = "/usr/bin/chromium"
WIDTHS = (1440, 1920)
SHOTS = Path(settings.BASE_DIR) / "var" / "test" / "screenshots" / "admin"  # one folder whichever xdist worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


@pytest.fixture
def seeded():
    """Two demo tenants with 120 jobs and their history, a few ERP messages, and a user per role of both."""
    seed_demo(password="demo-only", tenants=2, jobs=120, seed=7)
    tenants = list(Tenant.objects.order_by("pk"))
    profile = IntegrationProfile.objects.create(tenant=tenants[0], name="Mock ERP")
    for job in Job.objects.filter(tenant=tenants[0]).order_by("-created_at")[:3]:
        ErpSync.objects.create(
            direction="outbound", profile=profile, tenant=job.tenant, job=job, external_id=job.external_id,
            idempotency_key=f"k-{job.pk}", body_sha256="0" * 64, request_body={}, body="{}", status="acked",
        )  # fmt: skip
    users = {"superuser": make_user("kok_tarayici", superuser=True)}
    for role in ROLES:
        users[role] = make_user(f"{role}_tarayici", roles=[role])
        for tenant in tenants:
            account_services.grant_tenant_access(users[role], tenant)
    for user in users.values():
        confirmed_device(user)  # before the password step, which sends a user without one to enrolment
    return users


@pytest.fixture
def wrong_words():
    with translation.override("tr"):
        msgstrs = _turkish_msgstrs()
    return {"I" + m.group()[1:] for s in msgstrs if (m := re.match(r"i[a-zçğıöşü]\w*", str(s)))}


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def sign_in(context, base, user):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.fill("input[name=token]", totp_code(confirmed_device(user)))
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    return page


def main_pages(job):
    return {
        "index": "/admin/",
        "jobs": "/admin/jobs/job/",
        "job": f"/admin/jobs/job/{job.pk}/change/",
        "users": "/admin/accounts/user/",
        "audit": "/admin/audit/auditlog/",
        "erp-sync": "/admin/erp/erpsync/",
        "incident-lock": "/admin/core/incidentlock/1/change/",
    }


def test_every_role_sees_a_turkish_admin_at_two_widths(live_server, seeded, browser, wrong_words):
    assert len(seeded) == 1 + len(ROLES)
    audit.seal_pending()
    # The newest job with a history (the demo's 120 jobs may have no running one at this moment).
    job = Job.objects.exclude(status="queued").order_by("-created_at").first()
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen, problems = {}, []

    # One browser context for every role (its cache keeps the admin's static files); cookies are cleared
    # between roles, so each signs in from scratch.
    context = browser.new_context(locale="tr-TR", viewport={"width": WIDTHS[0], "height": 900})
    for role, user in seeded.items():
        context.clear_cookies()
        page = sign_in(context, live_server.url, user)
        seen[role] = []
        for name, url in main_pages(job).items():
            response = page.goto(live_server.url + url)
            if response.status == 403 or "/admin/login/" in page.url:
                continue
            assert response.status == 200, (role, url, response.status)
            seen[role].append(name)
            text = page.inner_text("body")
            sidebar = page.inner_text("#nav-sidebar") if page.locator("#nav-sidebar").count() else ""
            if bad := dotless_capitals(text, wrong_words):
                problems.append(f"{role} {url}: dotless I in {sorted(bad)}")
            if re.search(r"\bNone\b", text):
                problems.append(f"{role} {url}: raw None")
            problems += [f"{role} {url}: sidebar shows {n!r}" for n in ENGLISH_APP_NAMES if n in sidebar]
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                if name == "jobs":
                    problems += _jobs_changelist_problems(page, role, width)
                page.screenshot(path=str(SHOTS / f"{role}-{name}-{width}.png"))
            page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        problems += [f"{role}: {e}" for e in page.errors]
        page.close()
    context.close()

    assert problems == []
    assert set(seen["superuser"]) == set(main_pages(job))
    assert {"index", "jobs", "job"} <= set(seen["operator"])
    assert "audit" in seen["auditor"]
    assert len(list(SHOTS.glob("*.png"))) >= 2 * sum(len(pages) for pages in seen.values())


def _jobs_changelist_problems(page, role, width):
    """At this width the whole jobs table fits, and each short id stays on one line."""
    fits = page.evaluate(
        """() => { const t = document.querySelector('#result_list');
                   return t ? t.getBoundingClientRect().right <= document.documentElement.clientWidth : true; }"""
    )
    id_heights = page.evaluate(
        """() => [...document.querySelectorAll("#result_list code.job-id")]
                   .map(c => c.getBoundingClientRect().height)"""
    )
    problems = [] if fits else [f"{role}: the jobs table is wider than {width} px"]
    if id_heights and max(id_heights) > 24:
        problems.append(f"{role}: a job id wraps at {width} px: {max(id_heights)} px high")
    headers = page.evaluate(
        "() => [...document.querySelectorAll('#result_list thead th')].map(t => t.innerText.trim())"
    )
    for wanted in ("İSTASYON", "OLUŞTURULDU", "SÜRE (MS)"):
        if wanted not in headers:
            problems.append(f"{role}: no {wanted} column at {width} px: {headers}")
    if page.locator("#result_list code.job-id").count() == 0:
        problems.append(f"{role}: no short job id at {width} px")
    return problems
