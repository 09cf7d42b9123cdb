"""issue 11: a Content-Security-Policy on every page and `Cache-Control: no-store` on authenticated pages and on
every API, report and forensic answer (the export detail carries a signed link); static files keep caching."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


def directives(response) -> dict:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.fixture
def analyst_client(client, tenant_a):
    return verified_client(client, make_user("analyst_headers", roles=["analyst"], tenants=[tenant_a]))


@pytest.mark.parametrize("path", ["/panel/", "/admin/", "/api/docs/"])
def test_pages_carry_a_policy_without_inline_scripts(analyst_client, superuser, path):
    client = verified_client(analyst_client, superuser) if path == "/admin/" else analyst_client
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src-elem"]


def test_the_sign_in_page_has_the_policy_too(client):
    response = client.get("/admin/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_an_inline_style_block_carries_the_nonce_of_its_response(client, db):
    page = client.get("/api/docs/")
    nonce = next(v for v in directives(page)["style-src-elem"] if v.startswith("'nonce-"))[7:-1]
    assert f'<style nonce="{nonce}">' in page.content.decode()
    assert "<script>" not in page.content.decode()  # the init script is served from ?script
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.parametrize("path", ["/panel/", "/admin/", "/admin/jobs/job/"])
def test_authenticated_pages_are_not_stored(client, superuser, path):
    response = verified_client(client, superuser).get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_api_and_report_json_is_not_stored_and_neither_is_the_export_detail(
    tenant_a, django_capture_on_commit_callbacks
):
    api = verified_client(APIClient(), make_user("analyst_export", roles=["analyst"], tenants=[tenant_a]))
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post("/reports/export", {"format": "json", "filters": {}}, format="json")
    assert started.status_code == 202 and "no-store" in started["Cache-Control"]
    detail = api.get(f"/reports/export/{started.json()['id']}")
    assert "download_url" in detail.json() and "no-store" in detail["Cache-Control"]
    for path in ("/reports/summary", "/api/v1/reports/summary", "/api/v1/jobs/", "/forensics/audit/export"):
        assert "no-store" in api.get(path)["Cache-Control"], path


def test_anonymous_api_answers_are_not_stored_either(client, db):
    assert "no-store" in client.get("/api/v1/jobs/")["Cache-Control"]
    assert "no-store" in client.get("/reports/summary")["Cache-Control"]
