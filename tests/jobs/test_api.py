"""The jobs API: filters, tenant scoping, keyset pagination, status changes, problem+json errors, request ids."""

import datetime as dt
import json
import logging
import re
import uuid

import pytest
from rest_framework.test import APIClient

from apps.core.logging import JsonFormatter, RequestContextFilter
from apps.jobs.models import Job, JobStatusChange
from apps.jobs.services import change_status
from tests import factories
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

LIST = "/api/v1/jobs/"
PROBLEM = "application/problem+json"


def detail_url(job) -> str:
    return f"/api/v1/jobs/{job.public_id}/"


def status_url(job) -> str:
    return f"/api/v1/jobs/{job.public_id}/status"


def assert_problem(response, status: int, slug: str) -> dict:
    """The response is an RFC 9457 problem of this status and stable type, tied to the request's id."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}"
    assert body["type"].startswith("urn:tezgah:problem:")
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert body["request_id"] == response["X-Request-Id"]
    return body


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def operator(role_users):
    return role_users["operator"]


@pytest.fixture
def api(operator):
    return verified_client(APIClient(), operator)


@pytest.fixture
def analyst_api(role_users):
    return verified_client(APIClient(), role_users["analyst"])


# ---------------------------------------------------------------- filters
@pytest.fixture
def floor(tenant_a):
    """Three jobs of tenant A on distinct machines, posts and model types, a day apart."""
    base = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    return [
        factories.JobFactory(
            tenant=tenant_a, status=status, external_id=f"ERP-F{n}", created_at=base + dt.timedelta(days=n)
        )
        for n, status in enumerate(["queued", "running", "paused"])
    ]


def test_without_filters_it_lists_the_jobs_of_the_users_tenants_newest_first(api, floor, tenant_b):
    hidden = factories.JobFactory(tenant=tenant_b)
    response = api.get(LIST)
    assert response.status_code == 200
    assert ids(response) == [str(j.public_id) for j in reversed(floor)]
    assert str(hidden.public_id) not in ids(response)


def test_it_filters_by_one_status(api, floor):
    assert ids(api.get(LIST, {"status": "running"})) == [str(floor[1].public_id)]


def test_it_filters_by_repeated_statuses(api, floor):
    response = api.get(f"{LIST}?status=queued&status=paused")
    assert set(ids(response)) == {str(floor[0].public_id), str(floor[2].public_id)}


def test_it_filters_by_comma_separated_statuses(api, floor):
    response = api.get(LIST, {"status": "queued,running"})
    assert set(ids(response)) == {str(floor[0].public_id), str(floor[1].public_id)}


def test_a_blank_status_filter_means_any_status(api, floor):
    response = api.get(f"{LIST}?status=")
    assert response.status_code == 200
    assert len(ids(response)) == 3


def test_it_filters_by_tenant_slug(tenant_a, tenant_b):
    both = make_user("op_both", roles=["operator"], tenants=[tenant_a, tenant_b])
    client = verified_client(APIClient(), both)
    a_job = factories.JobFactory(tenant=tenant_a)
    b_job = factories.JobFactory(tenant=tenant_b)
    assert set(ids(client.get(LIST))) == {str(a_job.public_id), str(b_job.public_id)}
    assert ids(client.get(LIST, {"tenant": "bogazici"})) == [str(b_job.public_id)]
    assert ids(client.get(LIST, {"tenant": "anadolu"})) == [str(a_job.public_id)]


def test_a_tenant_filter_cannot_reach_a_tenant_not_granted(api, floor, tenant_b):
    factories.JobFactory(tenant=tenant_b)
    response = api.get(LIST, {"tenant": "bogazici"})
    assert response.status_code == 200
    assert ids(response) == []


@pytest.mark.parametrize("name", ["machine", "post", "model_type"])
def test_it_filters_by_catalog_code(api, floor, name):
    wanted = floor[1]
    code = getattr(wanted, name).code
    assert ids(api.get(LIST, {name: code})) == [str(wanted.public_id)]
    assert ids(api.get(LIST, {name: "NO-SUCH-CODE"})) == []


def test_it_filters_by_external_id(api, floor):
    assert ids(api.get(LIST, {"external_id": "ERP-F2"})) == [str(floor[2].public_id)]


def test_created_from_is_inclusive_and_created_to_exclusive(api, floor):
    second = "2026-03-02T10:00:00Z"
    assert ids(api.get(LIST, {"created_from": second})) == [str(floor[2].public_id), str(floor[1].public_id)]
    assert ids(api.get(LIST, {"created_to": second})) == [str(floor[0].public_id)]
    window = {"created_from": "2026-03-01T12:00:00Z", "created_to": "2026-03-03T09:00:00Z"}
    assert ids(api.get(LIST, window)) == [str(floor[1].public_id)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"status": "queued,exploded"}, "status"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-13-45"}, "created_to"),
        ({"created_from": "2026-03-02T00:00:00Z", "created_to": "2026-03-01T00:00:00Z"}, "created_to"),
        ({"tenant": "not a slug!"}, "tenant"),
        ({"external_id": "x" * 65}, "external_id"),
    ],
)
def test_a_bad_filter_is_a_422_problem_naming_the_field(api, floor, query, field):
    body = assert_problem(api.get(LIST, query), 422, "validation-error")
    assert field in body["errors"], body


# ---------------------------------------------------------------- pagination
def test_keyset_pages_cover_every_job_once(api, tenant_a):
    jobs = factories.JobFactory.create_batch(7, tenant=tenant_a)
    expected = [str(j.public_id) for j in sorted(jobs, key=lambda j: -j.pk)]
    seen, url, pages = [], f"{LIST}?limit=3", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += ids(response)
        url = response.json()["next"]
        pages += 1
    assert pages == 3
    assert seen == expected, "no duplicates, no misses, newest first"


def test_following_next_gives_the_same_page_after_new_jobs_arrive(api, tenant_a):
    jobs = factories.JobFactory.create_batch(7, tenant=tenant_a)
    newest_first = [str(j.public_id) for j in sorted(jobs, key=lambda j: -j.pk)]
    first = api.get(LIST, {"limit": 3})
    assert ids(first) == newest_first[:3]
    factories.JobFactory.create_batch(4, tenant=tenant_a)
    second = api.get(first.json()["next"])
    assert ids(second) == newest_first[3:6]


def test_the_next_link_keeps_the_filters(api, tenant_a):
    factories.JobFactory.create_batch(3, tenant=tenant_a, status="running")
    factories.JobFactory.create_batch(3, tenant=tenant_a, status="queued")
    first = api.get(LIST, {"status": "running", "limit": 2})
    second = api.get(first.json()["next"])
    statuses = {Job.objects.get(public_id=i).status for i in ids(first) + ids(second)}
    assert statuses == {"running"} and len(ids(first) + ids(second)) == 3


def test_limit_is_capped_and_defaults_to_the_page_size(api, tenant_a, settings):
    factories.JobFactory.create_batch(6, tenant=tenant_a)
    settings.API_PAGE_SIZE = 2
    settings.API_MAX_PAGE_SIZE = 4
    assert len(ids(api.get(LIST))) == 2
    assert len(ids(api.get(LIST, {"limit": 3}))) == 3
    assert len(ids(api.get(LIST, {"limit": 500}))) == 4


# ---------------------------------------------------------------- detail
def test_detail_returns_the_job_by_public_id(api, tenant_a):
    job = factories.JobFactory(tenant=tenant_a, external_id="ERP-D1")
    response = api.get(detail_url(job))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(job.public_id)
    assert (body["tenant"], body["external_id"], body["status"]) == ("anadolu", "ERP-D1", "queued")
    assert (body["machine"], body["post"], body["model_type"]) == (job.machine.code, job.post.code, job.model_type.code)


def test_detail_of_another_tenants_job_is_404(api, tenant_b):
    job = factories.JobFactory(tenant=tenant_b)
    assert_problem(api.get(detail_url(job)), 404, "not-found")


def test_detail_of_an_unknown_id_is_404(api):
    assert_problem(api.get(f"/api/v1/jobs/{uuid.uuid4()}/"), 404, "not-found")


# ---------------------------------------------------------------- status changes
def test_a_status_change_goes_through_the_service_and_records_source_and_actor(api, operator, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    response = api.post(status_url(job), {"status": "running", "progress": 20, "reason": "başladı"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["progress"]) == ("running", 20)
    job.refresh_from_db()
    assert (job.status, job.progress) == ("running", 20)
    assert job.started_at is not None
    change = JobStatusChange.objects.get(job=job)
    assert (change.from_status, change.to_status, change.source, change.actor, change.reason) == (
        "queued",
        "running",
        "api",
        operator,
        "başladı",
    )


def test_a_progress_update_keeps_the_status(api, tenant_a):
    job = change_status(factories.JobFactory(tenant=tenant_a), "running")
    response = api.post(status_url(job), {"status": "running", "progress": 55}, format="json")
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.status, job.progress) == ("running", 55)


def test_an_illegal_transition_is_a_409_problem_with_the_allowed_statuses(api, tenant_a):
    job = change_status(change_status(factories.JobFactory(tenant=tenant_a), "running"), "succeeded")
    body = assert_problem(api.post(status_url(job), {"status": "running"}, format="json"), 409, "illegal-transition")
    assert (body["from_status"], body["to_status"], body["allowed"]) == ("succeeded", "running", [])
    queued = factories.JobFactory(tenant=tenant_a)
    body = assert_problem(api.post(status_url(queued), {"status": "paused"}, format="json"), 409, "illegal-transition")
    assert (body["from_status"], body["to_status"], body["allowed"]) == (
        "queued",
        "paused",
        ["cancelled", "failed", "running"],
    )
    job.refresh_from_db()
    queued.refresh_from_db()
    assert (job.status, queued.status) == ("succeeded", "queued")


@pytest.mark.parametrize("progress", [150, -1, "lots"])
def test_progress_outside_0_to_100_is_a_422_validation_problem(api, tenant_a, progress):
    job = factories.JobFactory(tenant=tenant_a)
    body = assert_problem(
        api.post(status_url(job), {"status": "running", "progress": progress}, format="json"), 422, "validation-error"
    )
    assert "progress" in body["errors"]
    job.refresh_from_db()
    assert job.status == "queued"


def test_a_succeeded_job_below_100_is_a_422_invalid_progress_problem(api, tenant_a):
    job = change_status(factories.JobFactory(tenant=tenant_a), "running")
    assert_problem(
        api.post(status_url(job), {"status": "succeeded", "progress": 50}, format="json"), 422, "invalid-progress"
    )
    job.refresh_from_db()
    assert job.status == "running"


def test_an_unknown_status_is_a_422_validation_problem(api, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    body = assert_problem(api.post(status_url(job), {"status": "exploded"}, format="json"), 422, "validation-error")
    assert "status" in body["errors"]


def test_an_analyst_may_not_change_a_status(analyst_api, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    assert_problem(analyst_api.post(status_url(job), {"status": "running"}, format="json"), 403, "permission-denied")
    job.refresh_from_db()
    assert job.status == "queued"
    assert not JobStatusChange.objects.filter(job=job).exists()


def test_changing_another_tenants_job_is_404(api, tenant_b):
    job = factories.JobFactory(tenant=tenant_b)
    assert_problem(api.post(status_url(job), {"status": "running"}, format="json"), 404, "not-found")
    job.refresh_from_db()
    assert job.status == "queued"


# ---------------------------------------------------------------- errors and request ids
def test_every_kind_of_error_is_problem_json(api, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    assert_problem(api.get(status_url(job)), 405, "method-not-allowed")
    assert_problem(
        api.post(status_url(job), data="{not json", content_type="application/json"), 400, "malformed-request"
    )
    assert_problem(api.get("/api/v1/jobs/not-a-uuid/"), 404, "not-found")
    assert_problem(APIClient().get(LIST), 401, "not-authenticated")
    assert_problem(APIClient().get(LIST, HTTP_AUTHORIZATION="Token nonsense"), 401, "authentication-failed")


def test_a_well_formed_request_id_is_echoed(api):
    supplied = "req-2026.03:abc_DEF-42"
    response = api.get(LIST, HTTP_X_REQUEST_ID=supplied)
    assert response["X-Request-Id"] == supplied
    error = api.get(f"/api/v1/jobs/{uuid.uuid4()}/", HTTP_X_REQUEST_ID=supplied)
    assert assert_problem(error, 404, "not-found")["request_id"] == supplied


@pytest.mark.parametrize("supplied", ["has spaces in it", "x" * 129, "short", "semi;colon;inject", "ünicode-id-123"])
def test_a_malformed_request_id_is_replaced_with_a_fresh_one(api, supplied):
    response = api.get(f"/api/v1/jobs/{uuid.uuid4()}/", HTTP_X_REQUEST_ID=supplied)
    generated = response["X-Request-Id"]
    assert generated != supplied
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert assert_problem(response, 404, "not-found")["request_id"] == generated


def test_without_a_request_id_each_response_gets_its_own(api):
    first, second = api.get(LIST)["X-Request-Id"], api.get(LIST)["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_log_lines_written_during_a_request_carry_its_id(api, caplog):
    caplog.handler.addFilter(RequestContextFilter())
    supplied = "trace-0000-1111-2222"
    with caplog.at_level(logging.INFO):
        response = api.get(f"/api/v1/jobs/{uuid.uuid4()}/", HTTP_X_REQUEST_ID=supplied)
    assert response.status_code == 404
    lines = [r for r in caplog.records if r.name == "django.request"]
    assert lines, "Django logs the 404 of the request"
    assert {r.request_id for r in lines} == {supplied}
    assert json.loads(JsonFormatter().format(lines[0]))["req_id"] == supplied


def test_log_lines_outside_a_request_carry_no_request_id(caplog):
    caplog.handler.addFilter(RequestContextFilter())
    with caplog.at_level(logging.INFO):
        logging.getLogger("apps.tests").info("outside any request")
    assert caplog.records[-1].request_id == "-"


# ---------------------------------------------------------------- schema and authentication
def test_the_schema_describes_the_job_endpoints(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = response.content.decode()
    for path in ("/api/v1/jobs/:", "/api/v1/jobs/{public_id}/:", "/api/v1/jobs/{public_id}/status:"):
        assert path in schema, path


def test_a_password_only_session_is_refused_and_a_verified_one_accepted(operator, tenant_a):
    factories.JobFactory(tenant=tenant_a)
    password_only = APIClient()
    password_only.force_login(operator)
    assert_problem(password_only.get(LIST), 403, "permission-denied")
    verified = verified_client(APIClient(), operator)
    response = verified.get(LIST)
    assert response.status_code == 200
    assert len(ids(response)) == 1
