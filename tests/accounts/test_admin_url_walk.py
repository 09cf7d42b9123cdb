"""Default-deny: every URL the admin site serves refuses a session that has a password but no TOTP code.

The walk reads the URL patterns the project actually serves under the admin namespace, so a ModelAdmin
registered tomorrow (ours or a third party's) is walked without anybody editing this file.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve, reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from apps.accounts import services
from apps.accounts.models import Tenant, User
from apps.security.models import BreakGlass, IPListEntry, Lockout, SecurityEvent, UserSession
from tests import factories
from tests.conftest import confirmed_device, make_passkey, make_user, verified_client

pytestmark = pytest.mark.django_db

# The steps a person takes before being verified; they must answer without TOTP, and leak nothing.
PUBLIC_NAMES = {
    "login",
    "logout",
    "mfa_verify",
    "mfa_enrol",
    # issue 14: the passkey half of step 2 (JSON; it needs the password step's pending user) and its strings.
    "mfa_passkey_begin",
    "mfa_passkey_complete",
    "mfa_passkey_jsi18n",
}

# Third-party admin pages the walk must reach; if any goes missing the walk is broken, not the admin safe.
THIRD_PARTY_NAMES = {
    *(f"otp_totp_totpdevice_{v}" for v in ("changelist", "add", "change", "delete", "history", "config", "qrcode")),
    *(f"otp_static_staticdevice_{v}" for v in ("changelist", "add", "change", "delete", "history")),
    "accounts_tenant_permissions",
    "accounts_tenant_permissions_manage_user",
    "accounts_tenant_permissions_manage_group",
    *(
        f"django_celery_beat_{m}_{v}"
        for m in ("periodictask", "crontabschedule", "intervalschedule", "solarschedule", "clockedschedule")
        for v in ("changelist", "add", "change", "delete")
    ),
    *(f"knox_authtoken_{v}" for v in ("changelist", "add", "change", "delete")),
    *(f"django_otp_webauthn_webauthncredential_{v}" for v in ("changelist", "change", "delete", "history")),
    *(
        f"{prefix}_{v}"
        for prefix in (*(f"catalog_{m}" for m in ("machine", "post", "material", "template", "modeltype")), "jobs_job")
        for v in ("import", "process_import", "export")
    ),
}
OWN_NAMES = {
    "index",
    "app_list",
    "password_change",
    "password_change_done",
    "jsi18n",
    "autocomplete",
    "view_on_site",
    "mfa_backup_codes",
    "mfa_step_up",
    "mfa_passkeys",
    "mfa_passkey_register_begin",
    "mfa_passkey_register_complete",
    "mfa_step_up_passkey_begin",
    "mfa_step_up_passkey_complete",
    "accounts_user_change",
    "auth_user_password_change",
    "jobs_job_change",
    *PUBLIC_NAMES,
}
CATCH_ALL_ROUTE = "admin/(?P<url>.*)$"

_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class AdminURL:
    url: str
    route: str
    name: str | None


@pytest.fixture
def samples(tenant_a):
    """A row of each model the admin registers, so the walk's object URLs point at pages that exist."""
    owner = make_user("target", roles=["operator"], tenants=[tenant_a])
    services.issue_backup_codes(owner)
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    job = factories.JobFactory(tenant=tenant_a)
    rows = [
        owner,
        tenant_a,
        Group.objects.get(name="operator"),
        confirmed_device(owner),
        StaticDevice.objects.get(user=owner),
        AuthToken.objects.create(owner)[0],
        interval,
        PeriodicTask.objects.create(name="walk", task="apps.billing.tasks.expire_licenses", interval=interval),
        CrontabSchedule.objects.create(minute="5"),
        SolarSchedule.objects.create(event="sunrise", latitude=41.0, longitude=29.0),
        ClockedSchedule.objects.create(clocked_time=timezone.now()),
        job,
        job.machine,
        job.post,
        job.model_type,
        factories.MaterialFactory(tenant=tenant_a),
        factories.TemplateFactory(tenant=tenant_a),
        factories.LicenseFactory(tenant=tenant_a),
        factories.InvoiceFactory(tenant=tenant_a),
        # issue 14: sessions, security events, lockouts, address lists, break-glass.
        UserSession.objects.create(user=owner, session_key="walk-session"),
        SecurityEvent.objects.create(event_type="ip_refused", severity="medium", client_ip="192.0.2.1"),
        Lockout.objects.create(username="target", ip_address="192.0.2.1", until=timezone.now()),
        IPListEntry.objects.create(network="192.0.2.0/24", list_type="blacklist"),
        BreakGlass.objects.create(user=owner, reason="walk", minutes=5, requested_by=owner),
        *_governance_rows(owner),
        # issue 14: a passkey (django-otp-webauthn's admin, behind the same MFA and step-up).
        make_passkey(owner),
    ]
    return {type(row): row for row in rows}


def _governance_rows(owner):
    """issue 17: a retention run, a legal hold and a data subject request for the governance pages."""
    from apps.governance import services as governance
    from apps.governance import subject_requests
    from apps.governance.models import RetentionRun

    return [
        RetentionRun.objects.create(data_class="sessions", cutoff=timezone.now(), started_at=timezone.now()),
        governance.place_hold(None, scope="object_type", object_type="sessions", reason="walk"),
        subject_requests.create_request(None, request_type="access", subject_id=owner.pk),
    ]


def admin_patterns():
    """(route, URLPattern) for every pattern under the admin namespace, as the project's URLconf serves them."""
    site = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "admin")

    def walk(patterns, route):
        for pattern in patterns:
            part = str(pattern.pattern).removeprefix("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route + part)
            else:
                assert isinstance(pattern, URLPattern)
                yield route + part, pattern

    return list(walk(site.url_patterns, str(site.pattern)))


def admin_urls(samples):
    """Concrete URLs for every admin pattern, path parameters filled with real rows where there are some."""
    models = {(m._meta.app_label, m._meta.model_name): m for m in admin.site._registry}
    urls = []
    for route, pattern in admin_patterns():
        if "(?P<" in route:
            urls.extend(AdminURL(url, route, pattern.name) for url in _regex_urls(route, pattern))
            continue
        segments = route.split("/")
        model = models.get(tuple(segments[1:3]))
        url = "/" + _PARAMETER.sub(lambda m, model=model, route=route: _value(m, model, route, samples), route)
        urls.append(AdminURL(url, route, pattern.name))
    return urls


def _regex_urls(route, pattern):
    if pattern.name == "app_list":
        labels = re.search(r"\(\?P<app_label>([^)]*)\)", route).group(1).split("|")
        return [f"/admin/{label}/" for label in labels]
    if route == CATCH_ALL_ROUTE:
        return ["/admin/no-such-page/"]
    raise AssertionError(f"Teach the walk how to fill the regex route {route!r}")


def _value(match, model, route, samples):
    name = match.group("name")
    if route.startswith("admin/r/"):  # view_on_site: a content type and an object of it
        tenant = samples[Tenant]
        return str(ContentType.objects.get_for_model(Tenant).pk) if name == "content_type_id" else str(tenant.pk)
    if name == "user_id":
        return str(samples[User].pk)
    if name == "group_id":
        return str(samples[Group].pk)
    if name in {"object_id", "object_pk", "pk", "id"}:
        row = samples.get(model) or (model._default_manager.first() if model else None)
        return str(quote(str(row.pk))) if row is not None else "1"
    raise AssertionError(f"Teach the walk how to fill <{name}> in {route!r}")


def refusal_problem(response, url) -> str | None:
    """None when `response` sends the client to the admin login with `next` pointing back at `url`."""
    if response.status_code != 302:
        return f"{url} answered {response.status_code}"
    parts = urlsplit(response["Location"])
    if parts.path != reverse("admin:login") or parse_qs(parts.query).get("next") != [url]:
        return f"{url} redirected to {response['Location']}, not to the login"
    return None


def assert_sent_to_login(response, url):
    problem = refusal_problem(response, url)
    assert problem is None, problem


def snapshot(samples):
    return {model: model._default_manager.count() for model in samples} | {
        "rows": {(type(obj), obj.pk) for obj in samples.values()}
    }


@pytest.fixture
def password_only(superuser):
    """An active staff superuser whose session has a password but no TOTP verification."""
    confirmed_device(superuser)
    client = Client()
    client.force_login(superuser)
    return client


# ---------------------------------------------------------------- the walk itself
def test_the_walk_fills_every_admin_pattern_with_a_url_that_resolves_to_it(samples):
    urls = admin_urls(samples)
    routes = {route for route, _ in admin_patterns()}

    assert {u.route for u in urls} == routes
    for item in urls:
        match = resolve(item.url.split("?")[0])
        assert match.route == item.route, f"{item.url} resolved to {match.route}, not {item.route}"
        assert match.url_name == item.name


def test_the_walk_covers_the_third_party_admins(samples):
    urls = admin_urls(samples)
    names = {u.name for u in urls}

    missing = (THIRD_PARTY_NAMES | OWN_NAMES) - names
    assert not missing, f"the walk did not reach: {sorted(missing)}"
    assert CATCH_ALL_ROUTE in {u.route for u in urls}
    app_lists = {u.url for u in urls if u.name == "app_list"}
    assert {"/admin/otp_totp/", "/admin/otp_static/", "/admin/django_celery_beat/", "/admin/knox/"} <= app_lists


# ---------------------------------------------------------------- password-only sessions are refused
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_admin_url_refuses_a_password_only_session(password_only, samples, method):
    before = snapshot(samples)
    send = getattr(password_only, method)
    walked, problems = 0, []

    for item in admin_urls(samples):
        if item.name in PUBLIC_NAMES:
            continue
        response = send(item.url, {"post": "yes"}) if method == "post" else send(item.url)
        if problem := refusal_problem(response, item.url):
            problems.append(problem)
        assert SESSION_KEY in password_only.session, "the walk must keep its password-only session"
        walked += 1

    assert not problems, "served to a password-only session:\n" + "\n".join(problems)
    assert walked > 100
    assert snapshot(samples) == before, "a refused request must not change anything"


def test_the_login_page_shows_a_password_only_session_nothing_of_the_console(password_only, samples):
    for response in (password_only.get(reverse("admin:login")), password_only.post(reverse("admin:login"), {})):
        assert response.status_code == 200
        assert not response.context["available_apps"]
        assert not response.context["log_entries"]
        assert_leaks_nothing(response)


@pytest.mark.parametrize("name", ["mfa_verify", "mfa_enrol"])
def test_the_code_steps_send_a_session_without_a_password_step_back_to_the_login(password_only, samples, name):
    for response in (password_only.get(reverse(f"admin:{name}")), password_only.post(reverse(f"admin:{name}"))):
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:login")
    assert not TOTPDevice.objects.filter(user__username="root", confirmed=False).exists()


def test_logout_serves_a_password_only_session_no_page(password_only, samples):
    # Django's admin_view sends a session without admin permission from logout to the index, which
    # then asks for the login: nothing of the console is rendered on the way.
    for response in (password_only.get(reverse("admin:logout")), password_only.post(reverse("admin:logout"))):
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")
        assert_leaks_nothing(response)
        assert_sent_to_login(password_only.get(response["Location"]), reverse("admin:index"))


def assert_leaks_nothing(response):
    content = response.content.decode()
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert changelist not in content, f"the page links to {changelist}"
    assert reverse("admin:password_change") not in content


# ---------------------------------------------------------------- the same walk, verified, does see pages
# Pages a verified superuser must be served (200): proof that the refusals above are about MFA.
MUST_SERVE = {
    "index",
    "app_list",
    "password_change",
    "jsi18n",
    "mfa_step_up",
    "mfa_backup_codes",
    "accounts_user_changelist",
    "accounts_user_change",
    "auth_user_password_change",
    "accounts_tenant_change",
    "accounts_tenant_permissions",
    "accounts_tenant_permissions_manage_user",
    "accounts_tenant_permissions_manage_group",
    "otp_totp_totpdevice_changelist",
    "otp_totp_totpdevice_change",
    "otp_static_staticdevice_changelist",
    "otp_static_staticdevice_change",
    "django_celery_beat_periodictask_changelist",
    "django_celery_beat_periodictask_change",
    "django_celery_beat_crontabschedule_changelist",
    "knox_authtoken_changelist",
    "catalog_machine_import",
    "catalog_machine_export",
    "catalog_post_import",
    "jobs_job_import",
    "jobs_job_export",
    "jobs_job_changelist",
    "jobs_job_change",
    "billing_license_changelist",
    "mfa_passkeys",
    "django_otp_webauthn_webauthncredential_changelist",
    "django_otp_webauthn_webauthncredential_change",
}


def test_the_same_walk_is_served_to_a_verified_session(client, superuser, samples):
    verified_client(client, superuser)
    served = set()

    for item in admin_urls(samples):
        if item.name in PUBLIC_NAMES:
            continue
        response = client.get(item.url)
        location = response.get("Location", "")
        assert not location.startswith(reverse("admin:login")), f"{item.url} refused a verified superuser"
        assert response.status_code < 500, f"{item.url} answered {response.status_code}"
        if response.status_code == 200:
            served.add(item.name)

    assert served >= MUST_SERVE, f"not served to a verified superuser: {sorted(MUST_SERVE - served)}"


# ---------------------------------------------------------------- a view that forgets admin_view is still closed
def _unwrapped_admin_page(request):
    return HttpResponse("console page that forgot admin_site.admin_view")


urlpatterns = [
    path("admin/unwrapped/", _unwrapped_admin_page),
    path("admin/", admin.site.urls),
]


@pytest.mark.urls(__name__)
def test_an_admin_url_that_forgets_admin_view_still_refuses_a_password_only_session(password_only, superuser):
    assert_sent_to_login(password_only.get("/admin/unwrapped/"), "/admin/unwrapped/")

    verified = verified_client(Client(), superuser)
    response = verified.get("/admin/unwrapped/")
    assert response.status_code == 200
    assert response.content == b"console page that forgot admin_site.admin_view"
