"""The rollups give the same numbers as the raw scan: random jobs, random changes through every write path,
random filters, both paths compared field by field (summary, key figures, breakdowns, trend, histogram)."""

import datetime as dt

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.jobs import services as job_services
from apps.jobs.models import Job, JobStatus
from apps.reporting import rollup, selectors
from apps.reporting.models import JobDurationRollup, JobRollup
from tests import factories
from tests.conftest import make_user

from .conftest import IST

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 11, 2, 0, 0, tzinfo=IST)
MINUTE = 60_000

# Durations near whole minutes on purpose: the rollup's unit, where an off-by-one would show.
durations = st.one_of(
    st.none(),
    st.integers(0, 40 * MINUTE),
    st.builds(lambda m, d: max(0, m * MINUTE + d), st.integers(0, 130), st.sampled_from([-1, 0, 1])),
    # Where whole minutes give way to hour-wide buckets (rollup.FINE_MINUTES), and the long tail.
    st.builds(
        lambda m, d: m * MINUTE + d,
        st.sampled_from([239, 240, 241, 299, 300, 301, 360, 1000, 5000]),
        st.sampled_from([-1, 0, 1, 30 * MINUTE]),
    ),
)
job_rows = st.lists(
    st.tuples(
        st.integers(0, 1),  # tenant
        st.integers(0, 3),  # post (machine follows)
        st.integers(0, 1),  # model type
        st.sampled_from(JobStatus.values),
        # Minutes after START: Istanbul midnights fall inside, and (the wide range) month ends: the month
        # rollups answer whole months of a date range, the daily ones its ends.
        st.one_of(st.integers(0, 5 * 24 * 60), st.integers(-40 * 24 * 60, 40 * 24 * 60)),
        durations,
    ),
    min_size=0,
    max_size=40,
)
# Days near the jobs, any day of the wide range, and the first and last days of months.
dates = st.one_of(
    st.dates(dt.date(2026, 11, 1), dt.date(2026, 11, 8)),
    st.dates(dt.date(2026, 9, 20), dt.date(2026, 12, 15)),
    st.sampled_from([dt.date(2026, m, d) for m, d in ((9, 30), (10, 1), (10, 31), (11, 1), (11, 30), (12, 1))]),
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "date_from": dates,
        "date_to": dates,
        "status": st.lists(st.sampled_from(JobStatus.values), min_size=1, max_size=3, unique=True),
        "tenant": st.sampled_from(["anadolu", "bogazici"]),
        "machine": st.sampled_from(["M01", "M02"]),
        "post": st.sampled_from(["M01-P1", "M02-P1"]),
        "model_type": st.sampled_from(["MT01", "MT02"]),
    },
)
# After the jobs are written: (job index, what to do) through the jobs' own write paths and plain SQL.
changes = st.lists(
    st.tuples(st.integers(0, 39), st.sampled_from(["status", "references", "update", "delete", "duration"])),
    max_size=8,
)


@pytest.fixture
def world(tenant_a, tenant_b):
    plants = []
    for tenant in (tenant_a, tenant_b):
        posts = []
        for m in ("M01", "M02"):
            machine = factories.MachineFactory(tenant=tenant, code=m)
            posts += [factories.PostFactory(tenant=tenant, machine=machine, code=f"{m}-P{i}") for i in (1, 2)]
        types = [factories.ModelTypeFactory(tenant=tenant, code=f"MT0{i}") for i in (1, 2)]
        plants.append((tenant, posts, types))
    analyst = make_user("rollup-analyst", roles=["analyst"], tenants=[tenant_a])
    admin = make_user("rollup-admin", superuser=True)
    return {"plants": plants, "users": [analyst, admin]}


def _write(world, rows):
    jobs = []
    for tenant_i, post_i, type_i, status, minutes, duration in rows:
        tenant, posts, types = world["plants"][tenant_i]
        created = START + dt.timedelta(minutes=minutes)
        jobs.append(
            Job(
                tenant=tenant,
                post=posts[post_i],
                machine=posts[post_i].machine,
                model_type=types[type_i],
                status=status,
                created_at=created,
                duration_ms=duration,
            )
        )
    return Job.objects.bulk_create(jobs)


def _change(world, jobs, index, what):
    if not jobs:
        return
    job = Job.objects.filter(pk=jobs[index % len(jobs)].pk).first()
    if job is None:
        return
    if what == "status":
        # A full save() (as the admin does), every column written.
        job.status = JobStatus.CANCELLED if job.status != JobStatus.CANCELLED else JobStatus.FAILED
        job.duration_ms = None if job.duration_ms is None else job.duration_ms + MINUTE
        job.save()
    elif what == "references":
        _tenant, posts, types = next(p for p in world["plants"] if p[0].pk == job.tenant_id)
        job.post = posts[(posts.index(job.post) + 1) % len(posts)]
        job.machine = job.post.machine
        job.model_type = types[(types.index(job.model_type) + 1) % len(types)]
        job_services.update_job_references(job)
    elif what == "update":
        Job.objects.filter(pk=job.pk).update(created_at=job.created_at - dt.timedelta(hours=13), progress=7)
    elif what == "duration":
        Job.objects.filter(pk=job.pk).update(duration_ms=None if job.duration_ms else 59_999)
    else:
        job.delete()


def _both(call):
    with override_settings(REPORTING_ROLLUP=False):
        raw = call()
    with override_settings(REPORTING_ROLLUP=True):
        rolled = call()
    return raw, rolled


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=job_rows, edits=changes, picked=st.lists(filters, min_size=1, max_size=3))
def test_the_rollup_gives_the_raw_scans_numbers_for_random_jobs_changes_and_filters(world, rows, edits, picked):
    with transaction.atomic():
        jobs = _write(world, rows)
        for index, what in edits:
            _change(world, jobs, index, what)
        for flt in picked:
            for user in world["users"]:
                for call in (
                    lambda u=user, f=flt: selectors.report_summary(u, f, with_stacks=True),
                    lambda u=user, f=flt: selectors.report_kpis(u, f),
                    lambda u=user, f=flt: selectors.report_breakdowns(u, f),
                    lambda u=user, f=flt: selectors.trend_and_histogram(u, f),
                ):
                    raw, rolled = _both(call)
                    assert rolled == raw, flt
        transaction.set_rollback(True)


def test_the_rollup_follows_status_changes_and_a_rebuild_changes_nothing(world):
    tenant, posts, types = world["plants"][0]
    job = factories.JobFactory(
        tenant=tenant, post=posts[0], machine=posts[0].machine, model_type=types[0], status=JobStatus.QUEUED
    )
    job_services.change_status(job, JobStatus.RUNNING, at=job.created_at + dt.timedelta(minutes=1))
    job.refresh_from_db()
    job_services.change_status(job, JobStatus.SUCCEEDED, at=job.created_at + dt.timedelta(minutes=3, seconds=30))
    job.refresh_from_db()
    assert job.duration_ms == 150_000
    live = sorted(JobRollup.objects.filter(jobs__gt=0).values_list("status", "jobs", "with_duration"))
    assert live == [(JobStatus.SUCCEEDED, 1, 1)]
    minutes = list(JobDurationRollup.objects.filter(jobs__gt=0).values_list("duration_minute", "jobs"))
    assert minutes == [(2, 1)]
    kept = _every_rollup_row()
    month_rows = kept["reporting.jobmonthrollup"]
    assert [(r[0], r[2], r[6], r[7]) for r in month_rows] == [
        (r[0].replace(day=1), JobStatus.SUCCEEDED, 1, 1) for r in kept["reporting.jobrollup"]
    ]
    rollup.rebuild()
    assert sorted(JobRollup.objects.values_list("status", "jobs", "with_duration")) == live
    assert list(JobDurationRollup.objects.values_list("duration_minute", "jobs")) == minutes
    assert _every_rollup_row() == kept


def _every_rollup_row():
    """Every level's live rows (jobs > 0), without ids: what the triggers kept must be what a rebuild gives."""
    from apps.reporting import models

    found = {}
    for model in (
        models.JobRollup,
        models.JobDurationRollup,
        models.JobMonthRollup,
        models.JobDayStatusRollup,
        models.JobDurationMonthRollup,
        models.JobDurationPostMonthRollup,
    ):
        fields = [f.name for f in model._meta.fields if f.name != "id"]
        found[model._meta.label_lower] = sorted(model.objects.filter(jobs__gt=0).values_list(*fields))
    return found


def test_random_jobs_and_changes_leave_every_level_as_a_rebuild_would(world):
    """Triggers against rebuild on every level, after writes across month ends, updates and deletes."""
    rows = [
        (
            i % 2,
            i % 4,
            i % 2,
            JobStatus.values[i % 6],
            (i * 997) % (60 * 24 * 60) - 30 * 24 * 60,
            i * 7919 % (3 * 3_600_000),
        )
        for i in range(60)
    ]
    jobs = _write(world, rows)
    for index, what in [(1, "status"), (2, "references"), (3, "update"), (4, "delete"), (5, "duration"), (6, "update")]:
        _change(world, jobs, index, what)
    kept = _every_rollup_row()
    assert kept["reporting.jobmonthrollup"], "jobs in more than one month"
    rollup.rebuild()
    assert _every_rollup_row() == kept


def test_a_paused_bulk_load_is_counted_by_the_rebuild(world):
    with rollup.paused():
        _write(world, [(1, 0, 0, JobStatus.FAILED, 10, 61_000), (1, 1, 1, JobStatus.QUEUED, 20, None)])
        assert not JobRollup.objects.exists()
    assert JobRollup.objects.filter(jobs__gt=0).count() == 2
    assert list(JobDurationRollup.objects.values_list("duration_minute", "jobs")) == [(1, 1)]
    # The triggers are back: one more job is counted at once.
    _write(world, [(1, 0, 0, JobStatus.FAILED, 10, 62_000)])
    assert list(JobDurationRollup.objects.values_list("duration_minute", "jobs")) == [(1, 2)]


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        (None, None, [("month", [])]),
        (
            dt.date(2026, 10, 1),
            dt.date(2026, 11, 30),
            [("month", [(">=", dt.date(2026, 10, 1)), ("<", dt.date(2026, 12, 1))])],
        ),
        (
            dt.date(2026, 10, 2),
            dt.date(2026, 10, 30),
            [("day", [(">=", dt.date(2026, 10, 2)), ("<=", dt.date(2026, 10, 30))])],
        ),
        (
            dt.date(2026, 9, 30),
            dt.date(2026, 11, 2),
            [
                ("month", [(">=", dt.date(2026, 10, 1)), ("<", dt.date(2026, 11, 1))]),
                ("day", [(">=", dt.date(2026, 9, 30)), ("<", dt.date(2026, 10, 1))]),
                ("day", [(">=", dt.date(2026, 11, 1)), ("<=", dt.date(2026, 11, 2))]),
            ],
        ),
        (
            dt.date(2026, 12, 31),
            None,
            [
                ("month", [(">=", dt.date(2027, 1, 1))]),
                ("day", [(">=", dt.date(2026, 12, 31)), ("<", dt.date(2027, 1, 1))]),
            ],
        ),
        (None, dt.date(2026, 2, 28), [("month", [("<", dt.date(2026, 3, 1))])]),
        (
            dt.date(2026, 11, 1),
            dt.date(2026, 11, 1),
            [("day", [(">=", dt.date(2026, 11, 1)), ("<=", dt.date(2026, 11, 1))])],
        ),
    ],
)
def test_a_date_range_is_its_whole_months_plus_its_edge_days(date_from, date_to, expected):
    filters = {k: v for k, v in (("date_from", date_from), ("date_to", date_to)) if v}
    segments = selectors._segments(filters, "m", "d")
    assert [(period, bounds) for _table, period, bounds in segments] == expected
    assert [table for table, _p, _b in segments] == ["m" if p == "month" else "d" for p, _ in expected]
