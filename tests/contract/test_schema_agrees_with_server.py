"""What the schema says a parameter may be is what the server takes, and the other way round (issue 11)."""

import pytest
import yaml
from rest_framework.test import APIClient

from apps.core import idempotency
from apps.reporting import constants
from tests import factories
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(client):
    return yaml.safe_load(client.get("/api/schema/").content)


@pytest.fixture
def root(superuser):
    return verified_client(APIClient(), superuser)


def parameter(document, path, method, name):
    return next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)


def test_every_idempotency_key_parameter_states_the_servers_rule(document):
    for path, methods in document["paths"].items():
        for method in methods:
            if method not in ("post", "put", "patch"):
                continue
            schema = parameter(document, path, method, "Idempotency-Key")["schema"]
            assert schema == {"type": "string", "minLength": 1, "maxLength": 255, "pattern": idempotency.KEY_PATTERN}


@pytest.mark.parametrize(
    ("key", "accepted"),
    [("!~az09", True), ("x" * 255, True), ("x" * 256, False), ("a b", False), ("é", False), ("\x7f", False)],
)
def test_the_server_takes_exactly_the_keys_the_pattern_allows(root, tenant_a, key, accepted):
    import re

    assert bool(re.fullmatch(idempotency.KEY_PATTERN, key)) is accepted
    job = factories.JobFactory(tenant=tenant_a)
    response = root.post(
        f"/api/v1/jobs/{job.public_id}/status", {"status": "running"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert (response.status_code == 200) is accepted, response.content
    if not accepted:
        assert response.status_code == 400


def test_the_detail_paging_bounds_are_in_the_schema(document):
    for path in ("/reports/detail", "/api/v1/reports/detail"):
        page = parameter(document, path, "get", "page")["schema"]
        limit = parameter(document, path, "get", "limit")["schema"]
        assert (page["minimum"], page["maximum"]) == (1, constants.DETAIL_MAX_PAGE)
        assert (limit["minimum"], limit["maximum"]) == (1, constants.DETAIL_MAX_LIMIT)
    assert parameter(document, "/api/v1/jobs/", "get", "limit")["schema"]["minimum"] == 1


@pytest.mark.parametrize("query", ["page=0", "limit=0", f"page={constants.DETAIL_MAX_PAGE + 1}", "limit=501"])
def test_detail_values_outside_the_schema_are_422(root, query):
    assert root.get(f"/api/v1/reports/detail?{query}").status_code == 422


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1" * 5000])
def test_a_job_list_limit_below_one_is_422_not_silently_the_default(root, limit):
    response = root.get(f"/api/v1/jobs/?limit={limit}")
    assert response.status_code == 422 and "limit" in response.json()["errors"]


def test_a_job_list_limit_above_the_cap_is_capped_as_documented(root, tenant_a, settings):
    settings.API_MAX_PAGE_SIZE = 2
    for _ in range(3):
        factories.JobFactory(tenant=tenant_a)
    assert len(root.get("/api/v1/jobs/?limit=1").json()["results"]) == 1
    assert len(root.get("/api/v1/jobs/?limit=100").json()["results"]) == 2


def test_an_empty_report_date_is_documented_as_any_and_taken_as_any(document, root):
    schema = parameter(document, "/api/v1/reports/summary", "get", "date_to")["schema"]
    assert {"type": "string", "maxLength": 0} in schema["anyOf"]
    assert root.get("/api/v1/reports/summary?date_to=&date_from=").status_code == 200
    assert root.get("/api/v1/reports/summary?date_to=2026-13-01").status_code == 422


@pytest.mark.parametrize("query", ["format=", "date_to=", "format=json&actor="])
def test_an_empty_forensic_export_parameter_is_422(root, query):
    response = root.get(f"/forensics/audit/export?{query}")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "9999-12-31"])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
def test_a_report_day_at_the_edge_of_the_calendar_is_422_not_500(root, name, day):
    # Found by the fuzz run at FUZZ_EXAMPLES=100: Istanbul -> UTC overflowed on 0001-01-01.
    for path in ("/api/v1/reports/summary", "/api/v1/reports/detail"):
        response = root.get(f"{path}?{name}={day}")
        assert response.status_code == 422 and name in response.json()["errors"], response.content
    assert root.get("/api/v1/reports/summary?date_from=1900-01-01&date_to=9999-12-30").status_code == 200
