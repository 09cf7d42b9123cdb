"""Issue 12, "one product": / leads by capability, the panel and the console link to each other, sign-out."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


def test_a_visitor_at_the_root_is_sent_to_the_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next=%2F"


def test_a_password_only_session_at_the_root_is_sent_to_the_sign_in(client, role_users):
    client.force_login(role_users["analyst"])  # no TOTP step
    assert client.get("/")["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    ("role", "where"),
    [("analyst", "/panel/"), ("admin", "/admin/"), ("operator", "/admin/"), ("auditor", "/admin/")],
)
def test_the_root_leads_a_signed_in_user_by_capability(role_users, role, where):
    response = verified_client(Client(), role_users[role]).get("/")
    assert response.status_code == 302
    assert response["Location"] == where


def test_the_root_leads_a_superuser_to_the_console(superuser):
    assert verified_client(Client(), superuser).get("/")["Location"] == "/admin/"


def test_after_signing_in_from_the_root_the_user_lands_where_the_root_leads(client, role_users):
    from tests.conftest import PASSWORD, confirmed_device, totp_code

    analyst = role_users["analyst"]
    device = confirmed_device(analyst)
    login = client.get("/", follow=True)
    next_value = login.context["next"]
    client.post(reverse("admin:login"), {"username": analyst.username, "password": PASSWORD, "next": next_value})
    response = client.post(reverse("admin:mfa_verify"), {"token": totp_code(device)}, follow=True)
    assert response.redirect_chain[-1][0] == "/panel/"


def test_the_panel_header_has_a_sign_out_form_that_signs_out(role_users):
    client = verified_client(Client(enforce_csrf_checks=True), role_users["analyst"])
    page = client.get("/panel/").content.decode()
    form = re.search(r'<form class="sign-out" method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    assert form and form.group(1) == reverse("admin:logout")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2)).group(1)
    assert "<script>" not in page.split("</header>")[0], "no inline script in the header (CSP)"

    response = client.post(form.group(1), {"csrfmiddlewaretoken": token, "next": "/"})

    assert response.status_code == 302 and response["Location"] == "/"
    assert SESSION_KEY not in client.session
    assert client.get("/panel/")["Location"].startswith(reverse("admin:login"))


def test_signing_out_needs_the_csrf_token(role_users):
    client = verified_client(Client(enforce_csrf_checks=True), role_users["analyst"])
    assert client.post(reverse("admin:logout"), {"next": "/"}).status_code == 403
    assert SESSION_KEY in client.session


def test_the_panel_links_to_the_console_for_whoever_may_use_it(role_users):
    page = verified_client(Client(), role_users["admin"]).get("/panel/").content.decode()
    assert f'href="{reverse("admin:index")}"' in page


def test_the_panel_has_no_console_link_for_a_reports_only_user(tenant_a):
    reader = make_user("okur", tenants=[tenant_a])
    reader.user_permissions.add(Permission.objects.get(codename="view_report", content_type__app_label="reporting"))
    client = verified_client(Client(), reader)
    page = client.get("/panel/").content.decode()
    assert f'href="{reverse("admin:index")}"' not in page
    assert client.get("/")["Location"] == "/panel/"


def test_the_console_header_links_to_the_panel_only_for_report_readers(role_users):
    analyst_page = verified_client(Client(), role_users["analyst"]).get(reverse("admin:index")).content.decode()
    header = analyst_page.split('id="user-tools"')[1].split("</div>")[0]
    assert f'href="{reverse("panel:overview")}"' in header
    assert 'href="/"' not in analyst_page, "no 'View site' link to a page that only sends you back"

    operator_page = verified_client(Client(), role_users["operator"]).get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("panel:overview")}"' not in operator_page
