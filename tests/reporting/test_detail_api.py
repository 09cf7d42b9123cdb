"""GET /reports/detail: newest first, offset pages over a snapshot that new jobs cannot shift."""

import json

import pytest

from apps.jobs.models import JobStatus

from .conftest import make_job

pytestmark = pytest.mark.django_db


def test_pages_are_newest_first_and_stay_put_when_new_jobs_arrive(analyst_api, jobs, tenant_a, catalog):
    first = analyst_api.get("/reports/detail", {"limit": 4}).json()
    assert [r["id"] for r in first["results"]] == [str(j.public_id) for j in sorted(jobs, key=lambda j: -j.pk)[:4]]
    assert first["has_next"] is True
    page2 = analyst_api.get("/reports/detail", {"limit": 4, "page": 2, "as_of": first["as_of"]}).json()

    for _ in range(3):
        make_job(tenant_a, catalog, 7, 9, JobStatus.QUEUED, "p1", "flans", None)

    again = analyst_api.get("/reports/detail", {"limit": 4, "page": 2, "as_of": first["as_of"]}).json()
    assert again["results"] == page2["results"]
    last = analyst_api.get("/reports/detail", {"limit": 4, "page": 3, "as_of": first["as_of"]}).json()
    assert len(last["results"]) == 2 and last["has_next"] is False
    # Without the snapshot, page 1 shows the new jobs first.
    assert analyst_api.get("/reports/detail", {"limit": 4}).json()["results"][0]["status"] == "queued"


def test_rows_carry_codes_and_istanbul_times(analyst_api, jobs):
    row = analyst_api.get("/reports/detail", {"status": "failed", "machine": "M02"}).json()["results"][0]
    assert (row["machine"], row["post"], row["model_type"], row["duration_ms"]) == ("M02", "M02-P1", "MT01", 9000)
    assert row["tenant"] == "anadolu"
    assert row["created_at"] == "2026-11-04T13:00:00+03:00"


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"page": 0}, {"status": "nope"}])
def test_bad_paging_is_a_422_problem(analyst_api, params):
    response = analyst_api.get("/reports/detail", params)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["type"] == "urn:tezgah:problem:validation-error"
