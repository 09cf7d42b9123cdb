"""GET /reports/summary: totals, rates, nearest-rank P50/P95 from persisted durations, breakdowns, filters, 422s."""

import json
import math
import random
from fractions import Fraction

import pytest

from apps.jobs.models import JobStatus
from apps.reporting import selectors
from tests import factories

from .conftest import JOB_TABLE

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def independent_percentile(values, p):
    """Nearest rank, computed with exact fractions and a plain sort: the value at rank ceil(p/100 * n)."""
    ordered = sorted(values)
    rank = math.ceil(Fraction(p, 100) * len(ordered))
    return ordered[max(rank, 1) - 1]


def assert_problem(response, status, slug):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}"
    return body


def test_it_reports_totals_rates_percentiles_and_breakdowns_of_the_fixture(analyst_api, jobs, other_tenant_job):
    body = analyst_api.get("/reports/summary").json()

    assert body["totals"] == {"count": 10, "success": 5, "failed": 2}
    assert body["rates"] == {"success_rate": round(5 / 7, 4), "failure_rate": round(2 / 7, 4)}
    durations = [d for *_rest, d in JOB_TABLE if d is not None]
    assert body["latency_ms"]["n"] == 8
    assert body["latency_ms"]["p50"] == independent_percentile(durations, 50) == 4000
    assert body["latency_ms"]["p95"] == independent_percentile(durations, 95) == 9000
    by_status = {row["code"]: row["count"] for row in body["breakdowns"]["by_status"]}
    assert by_status == {"succeeded": 5, "failed": 2, "cancelled": 1, "running": 1, "queued": 1}
    by_machine = {
        row["code"]: (row["count"], row["success"], row["failed"]) for row in body["breakdowns"]["by_machine"]
    }
    assert by_machine == {"M01": (5, 2, 1), "M02": (5, 3, 1)}
    by_type = {row["name"]: row["count"] for row in body["breakdowns"]["by_model_type"]}
    assert by_type == {"Flanş": 5, "Dişli ığdır": 5}
    assert {row["code"] for row in body["breakdowns"]["by_post"]} == {"M01-P1", "M02-P1"}


def test_filters_narrow_every_number(analyst_api, jobs):
    body = analyst_api.get("/reports/summary", {"status": "succeeded,failed", "machine": "M02"}).json()
    assert body["totals"] == {"count": 4, "success": 3, "failed": 1}
    assert (body["latency_ms"]["p50"], body["latency_ms"]["p95"]) == (5000, 9000)

    by_type = analyst_api.get("/reports/summary", {"model_type": "MT02", "post": "M01-P1"}).json()
    assert by_type["totals"]["count"] == 2


def test_dates_are_istanbul_calendar_days_both_inclusive(analyst_api, jobs):
    body = analyst_api.get("/reports/summary", {"date_from": "2026-11-03", "date_to": "2026-11-04"}).json()
    # The 4th at 01:00 Istanbul (22:00 UTC on the 3rd) belongs to the 4th; both ends count.
    assert body["totals"]["count"] == 4
    assert body["range"] == {"from": "2026-11-03", "to": "2026-11-04", "time_zone": "Europe/Istanbul"}
    assert (
        analyst_api.get("/reports/summary", {"date_from": "2026-11-04", "date_to": "2026-11-04"}).json()["totals"][
            "count"
        ]
        == 2
    )


def test_it_is_served_under_the_api_prefix_too(analyst_api, jobs):
    assert analyst_api.get("/api/v1/reports/summary").json()["totals"]["count"] == 10


@pytest.mark.parametrize("n", [1, 2, 7, 19, 20, 21, 40, 101])
def test_percentiles_equal_an_independent_nearest_rank_for_any_count(analyst, tenant_a, catalog, n):
    rng = random.Random(n)
    durations = [rng.randint(1, 10_000) for _ in range(n)]
    for d in durations:
        factories.JobFactory(
            tenant=tenant_a,
            post=catalog["p1"],
            machine=catalog["m1"],
            model_type=catalog["flans"],
            status=JobStatus.SUCCEEDED,
            duration_ms=d,
        )
    # Both code paths: tenant-only (index walk on PostgreSQL) and filtered (percentile_disc on PostgreSQL).
    for filters in ({}, {"status": [JobStatus.SUCCEEDED]}):
        latency = selectors.report_summary(analyst, filters)["latency_ms"]
        assert latency["p50"] == independent_percentile(durations, 50)
        assert latency["p95"] == independent_percentile(durations, 95)


def test_no_durations_means_no_percentiles(analyst_api, tenant_a, catalog):
    factories.JobFactory(tenant=tenant_a, post=catalog["p1"], machine=catalog["m1"], model_type=catalog["flans"])
    body = analyst_api.get("/reports/summary").json()
    assert body["latency_ms"]["p50"] is None and body["rates"]["failure_rate"] is None


def test_another_tenants_slug_is_refused(analyst_api, jobs, other_tenant_job):
    body = assert_problem(analyst_api.get("/reports/summary", {"tenant": "bogazici"}), 422, "validation-error")
    assert "tenant" in body["errors"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"date_from": "2026-11-05", "date_to": "2026-11-01"}, "date_to"),
        ({"date_from": "5 Kasım"}, "date_from"),
    ],
)
def test_bad_filters_are_422_problems(analyst_api, params, field):
    body = assert_problem(analyst_api.get("/reports/summary", params), 422, "validation-error")
    assert field in body["errors"]


def test_it_needs_the_report_capability(operator_api):
    assert_problem(operator_api.get("/reports/summary"), 403, "permission-denied")


def test_it_needs_a_signed_in_user(client):
    assert client.get("/reports/summary").status_code in (401, 403)


def test_the_dashboard_stacks_come_from_the_same_grouped_rows(analyst, jobs):
    stacks = selectors.report_summary(analyst, {}, with_stacks=True)["stacks"]
    assert stacks["machine"]["categories"] == ["M01", "M02"]
    assert stacks["machine"]["series"]["succeeded"] == [2, 3]
    assert stacks["machine"]["series"]["failed"] == [1, 1]
    assert stacks["post"]["categories"] == ["M01-P1", "M02-P1"]
    assert sum(sum(counts) for counts in stacks["post"]["series"].values()) == 10


def test_the_dashboard_histogram_counts_durations_per_bucket(analyst, jobs, tenant_a, catalog):
    from .conftest import make_job

    make_job(tenant_a, catalog, 7, 9, JobStatus.SUCCEEDED, "p1", "flans", 3 * 3600 * 1000)  # over 2 hours
    make_job(tenant_a, catalog, 7, 9, JobStatus.SUCCEEDED, "p1", "flans", 10 * 60 * 1000)  # 5-15 minutes
    trend, histogram = selectors.trend_and_histogram(analyst, {})
    # The fixture's 8 durations are all under a minute; its 2 jobs without one are in no bucket.
    assert [b["count"] for b in histogram] == [8, 0, 1, 0, 0, 0, 1]
    # Days are Istanbul days: the job at 01:00 on the 4th (22:00 UTC on the 3rd) counts on the 4th.
    assert [(d["day"], d["count"], d["success"], d["failed"]) for d in trend] == [
        ("2026-11-02", 2, 2, 0),
        ("2026-11-03", 2, 1, 1),
        ("2026-11-04", 2, 1, 1),
        ("2026-11-05", 2, 0, 0),
        ("2026-11-06", 2, 1, 0),
        ("2026-11-07", 2, 2, 0),
    ]
