"""Malformed input is a 4xx problem (or the admin's own message), never a 500 (issue 11)."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.erp import inbound_services
from apps.erp.models import IntegrationProfile
from tests import factories
from tests.conftest import make_user, verified_client

PROBLEM = "application/problem+json"
INBOUND_TOKEN = "malformed-inbound-token-0123456789"

pytestmark = pytest.mark.django_db


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.fixture
def root_api(superuser):
    return verified_client(APIClient(), superuser)


@pytest.fixture
def analyst(role_users):
    return role_users["analyst"]


@pytest.fixture
def analyst_api(analyst):
    return verified_client(APIClient(), analyst)


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a, external_id="ERP-DEEP")


@pytest.fixture
def inbound_profile(tenant_a):
    profile = IntegrationProfile.objects.create(tenant=tenant_a, name="deep", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(profile, INBOUND_TOKEN)
    return profile


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}", body
    return body


@pytest.mark.parametrize(
    "body",
    [nested(100_000), deep_object(5_000), b'{"filters":' + nested(3_000) + b"}"],
    ids=["array-100000", "object-5000", "filters-3000"],
)
@pytest.mark.parametrize("path", ["/reports/export", "/api/v1/reports/export", "/admin/erp/replay", "status"])
def test_json_nested_too_deeply_is_a_400_problem_on_every_drf_endpoint(root_api, job, path, body):
    url = f"/api/v1/jobs/{job.public_id}/status" if path == "status" else path
    response = root_api.generic("POST", url, body, content_type="application/json")
    assert "nested too deeply" in problem(response, 400, "malformed-request")["detail"]


def test_json_nested_a_little_still_parses(root_api, job):
    # 50 levels is no attack: it parses and fails validation as an ordinary bad body.
    response = root_api.generic(
        "POST", "/reports/export", b'{"format":' + nested(50) + b"}", content_type="application/json"
    )
    problem(response, 422, "validation-error")


@pytest.mark.parametrize("body", [nested(100_000), deep_object(5_000)], ids=["array-100000", "object-5000"])
def test_json_nested_too_deeply_on_the_inbound_api_is_a_422_schema_error(client, inbound_profile, body):
    # The inbound contract: an unparseable body is a schema error (docs/erp-inbound.md).
    response = client.generic(
        "POST",
        "/api/v1/erp/inbound/job/progress",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {INBOUND_TOKEN}",
        REMOTE_ADDR="127.0.0.1",
    )
    problem(response, 422, "validation-error")


@pytest.mark.parametrize("page", ["1" + "0" * 30, "1000001", str(2**63)])
def test_an_absurd_page_on_the_detail_api_is_a_422_problem(analyst_api, page):
    body = problem(analyst_api.get(f"/reports/detail?page={page}"), 422, "validation-error")
    assert "page" in body["errors"]
    assert problem(analyst_api.get(f"/api/v1/reports/detail?page={page}"), 422, "validation-error")


@pytest.mark.parametrize("query", ["as_of=" + "9" * 30, "limit=" + "9" * 30, "page=0", "limit=0"])
def test_absurd_detail_parameters_are_422(analyst_api, query):
    problem(analyst_api.get(f"/reports/detail?{query}"), 422, "validation-error")


@pytest.mark.parametrize("page", ["1" + "0" * 30, "0"])
def test_an_absurd_page_on_the_panel_shows_the_filter_error(analyst, page):
    panel = verified_client(Client(), analyst)
    response = panel.get(f"/panel/detail/?page={page}")
    # A page that cannot exist is the panel's own 400 page naming the filter, never a 500.
    assert response.status_code == 400
    assert any("Sayfa" in str(error) for error in response.context["filter_errors"]), response.context["filter_errors"]


def test_the_last_allowed_page_is_an_empty_page(analyst_api):
    response = analyst_api.get("/reports/detail?page=1000000&limit=500")
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("tenant", ["abc", "1" + "0" * 30, "-1", "999999"])
def test_a_bad_tenant_filter_in_the_jobs_admin_is_the_admins_own_message(superuser, tenant_a, tenant):
    admin = verified_client(Client(), superuser)
    response = admin.get(f"/admin/jobs/job/?tenant={tenant}")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    followed = admin.get(response["Location"])
    assert followed.status_code == 200


def test_a_good_tenant_filter_in_the_jobs_admin_still_filters(superuser, tenant_a, tenant_b):
    factories.JobFactory(tenant=tenant_a, external_id="ERP-A")
    factories.JobFactory(tenant=tenant_b, external_id="ERP-B")
    admin = verified_client(Client(), superuser)
    response = admin.get(f"/admin/jobs/job/?tenant={tenant_a.pk}")
    assert response.status_code == 200
    assert b"ERP-A" in response.content and b"ERP-B" not in response.content


def test_a_user_cannot_filter_on_a_tenant_it_does_not_have(tenant_a, tenant_b):
    user = make_user("ops_a", roles=["admin"], tenants=[tenant_a])
    admin = verified_client(Client(), user)
    assert admin.get(f"/admin/jobs/job/?tenant={tenant_b.pk}")["Location"].endswith("?e=1")
