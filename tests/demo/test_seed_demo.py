"""seed_demo: jobs that obey the status service's rules, arriving like a factory's, not all at once."""

import datetime as dt
import statistics
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from apps.jobs.constants import ALLOWED_TRANSITIONS, TERMINAL_STATUSES
from apps.jobs.models import Job, JobStatus, JobStatusChange

PASSWORD = "demo-password-for-tests"
ISTANBUL = ZoneInfo("Europe/Istanbul")
NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _seed(**kwargs):
    from apps.demo.seed import seed_demo

    return seed_demo(password=PASSWORD, now=NOW, **kwargs)


def _invariant_violations(job, history):
    """What change_status would never have written: one message per broken rule."""
    problems = []
    status = job.status
    ran = any(h.to_status == JobStatus.RUNNING for h in history)
    if (job.started_at is not None) != ran:
        problems.append("started_at is set iff the job ever ran")
    if (job.finished_at is not None) != (status in TERMINAL_STATUSES):
        problems.append("finished_at is set iff the status is final")
    if job.started_at is not None and job.finished_at is not None:
        expected = int((job.finished_at - job.started_at).total_seconds() * 1000)
        if job.duration_ms is None or abs(job.duration_ms - expected) > 1:
            problems.append("duration_ms is finished_at - started_at")
    elif job.duration_ms is not None:
        problems.append("no duration without both a start and a finish")
    if not 0 <= job.progress <= 100:
        problems.append("progress within 0..100")
    if status == JobStatus.SUCCEEDED and job.progress != 100:
        problems.append("a succeeded job has progress 100")
    if status == JobStatus.QUEUED and job.progress != 0:
        problems.append("a queued job has progress 0")
    times = [t for t in (job.created_at, job.started_at, job.finished_at) if t is not None]
    if times != sorted(times):
        problems.append("created <= started <= finished")
    if job.updated_at < max(times):
        problems.append("updated_at is not before any of them")
    current = JobStatus.QUEUED
    last_at = job.created_at
    for change in history:
        if change.from_status != current or change.to_status not in ALLOWED_TRANSITIONS[current]:
            problems.append(f"history {change.from_status} -> {change.to_status} after {current}")
        if change.changed_at < last_at:
            problems.append("history runs forward in time from creation")
        if change.changed_at > job.updated_at:
            problems.append("no history after updated_at")
        current, last_at = change.to_status, change.changed_at
    if current != status:
        problems.append(f"history ends in {current}, the job is {status}")
    if history and job.started_at is not None:
        first_run = next(h for h in history if h.to_status == JobStatus.RUNNING)
        if first_run.changed_at != job.started_at:
            problems.append("started_at is the first change to running")
    if history and status in TERMINAL_STATUSES and history[-1].changed_at != job.finished_at:
        problems.append("finished_at is the change to the final status")
    if status in (JobStatus.RUNNING, JobStatus.PAUSED) and job.started_at is None:
        problems.append("an open job that runs has a start")
    return problems


@pytest.mark.django_db
def test_every_seeded_job_obeys_the_status_services_rules():
    _seed(tenants=2, jobs=4000, days=21)
    history = defaultdict(list)
    for change in JobStatusChange.objects.order_by("job_id", "changed_at", "id"):
        history[change.job_id].append(change)
    broken = Counter()
    examples = {}
    for job in Job.objects.all():
        for problem in _invariant_violations(job, history[job.pk]):
            broken[problem] += 1
            examples.setdefault(problem, (job.status, job.started_at, job.finished_at))
    assert not broken, f"{dict(broken)}; e.g. {examples}"
    # Every status occurs, running and paused ones with a start and no finish.
    counts = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    assert set(counts) == set(JobStatus.values), counts
    assert not Job.objects.filter(status__in=["running", "paused"], started_at__isnull=True).exists()
    assert not Job.objects.filter(status__in=["running", "paused"], finished_at__isnull=False).exists()


def test_the_invariant_check_catches_a_running_job_with_a_finish_and_no_start():
    """The shape issue 12 found in the old seed: "Running, Started at -, Finished at 12:45"."""
    job = Job(status=JobStatus.RUNNING, progress=40, created_at=NOW, finished_at=NOW, updated_at=NOW)
    history = [JobStatusChange(from_status=JobStatus.QUEUED, to_status=JobStatus.RUNNING, progress=0, changed_at=NOW)]
    problems = _invariant_violations(job, history)
    assert "started_at is set iff the job ever ran" in problems
    assert "finished_at is set iff the status is final" in problems


@pytest.mark.django_db
def test_jobs_arrive_by_shift_and_weekday_over_the_whole_range():
    _seed(tenants=2, jobs=6000, days=56)
    created = list(Job.objects.values_list("created_at", "status", "updated_at"))
    per_day = Counter(c.astimezone(ISTANBUL).date() for c, _s, _u in created)
    full_days = [n for day, n in per_day.items() if day != NOW.astimezone(ISTANBUL).date()]
    median = statistics.median(full_days)
    assert len(per_day) >= 55, "jobs on (nearly) every day of the range"
    assert max(per_day.values()) <= 3 * median, f"a spike: {max(per_day.values())} vs median {median}"
    weekday = Counter(c.astimezone(ISTANBUL).weekday() for c, _s, _u in created)
    assert min(weekday[d] for d in range(5)) > 2 * weekday[6], f"Sundays are quiet: {weekday}"
    assert weekday[5] > weekday[6]
    by_shift = Counter(c.astimezone(ISTANBUL).hour // 8 for c, _s, _u in created)  # 0: night, 1: day, 2: evening
    assert by_shift[1] > by_shift[2] > by_shift[0], by_shift
    # The open jobs are the recent tail of the flow, not a block created in the last two days.
    open_created = sorted(c for c, s, _u in created if s in ("queued", "running", "paused"))
    assert open_created, "some jobs are still open"
    assert sum(1 for c in open_created if c < NOW - dt.timedelta(days=2)) > len(open_created) / 3
    open_per_day = Counter(c.astimezone(ISTANBUL).date() for c in open_created)
    assert max(open_per_day.values()) < median, "no day's open jobs outnumber an ordinary day's arrivals"
    # updated_at tells when each job last changed, so its values are nearly all distinct.
    assert len({u for _c, _s, u in created}) > 0.95 * len(created)


@pytest.mark.django_db
def test_durations_follow_model_types_and_failures_follow_machines():
    _seed(tenants=1, jobs=5000, days=30)
    finished = Job.objects.filter(status="succeeded")
    by_type = defaultdict(list)
    for name, ms in finished.values_list("model_type__name", "duration_ms"):
        by_type[name].append(ms)
    medians = {name: statistics.median(v) for name, v in by_type.items() if len(v) > 20}
    assert medians["Gövde"] > 3 * medians["Braket"], medians
    rates = []
    for machine in Job.objects.values_list("machine", flat=True).distinct():
        ran = Job.objects.filter(machine=machine, status__in=["succeeded", "failed"], started_at__isnull=False)
        failed = ran.filter(status="failed").count()
        rates.append(failed / max(1, ran.count()))
    assert max(rates) > 2 * min(rates), f"failure rates differ by machine: {rates}"


@pytest.mark.django_db
def test_seed_demo_command_seeds_every_status_and_prints_the_users(capsys):
    call_command("seed_demo", tenants=2, jobs=3000, days=14, password=PASSWORD)
    counts = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    assert set(counts) == set(JobStatus.values)
    assert sum(counts.values()) == 3000
    assert Job.objects.values("tenant").distinct().count() == 2
    assert Job.objects.values("machine").distinct().count() >= 10
    out = capsys.readouterr().out
    assert "3000 jobs" in out and "analist" in out


@pytest.mark.django_db
def test_seeded_ids_leave_the_sequences_usable(tenant_a):
    from tests import factories

    call_command("seed_demo", tenants=1, jobs=50, password=PASSWORD)
    job = factories.JobFactory()
    assert job.pk > Job.objects.exclude(pk=job.pk).order_by("-pk").first().pk


@pytest.mark.django_db
def test_if_empty_does_nothing_when_jobs_exist(capsys):
    call_command("seed_demo", tenants=1, jobs=10, password=PASSWORD)
    call_command("seed_demo", tenants=1, jobs=10, if_empty=True)
    assert Job.objects.count() == 10
    assert "already present" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs", [{"tenants": 0}, {"tenants": 99}, {"jobs": -1}, {"days": 0}, {"days": 100000}])
def test_seed_demo_explains_bad_arguments(kwargs):
    with pytest.raises(CommandError):
        call_command("seed_demo", **kwargs)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_large_postgresql_load_puts_back_every_index_and_foreign_key(monkeypatch):
    """seed_sql drops jobs_job's secondary indexes and foreign keys for a large load and adds them back."""
    from django.db import connection

    from apps.demo import seed_sql

    def shape():
        with connection.cursor() as cursor:
            return {
                table: (
                    sorted(seed_sql._secondary_indexes(cursor, table)),
                    sorted(seed_sql._foreign_keys(cursor, table)),
                )
                for table in ("jobs_job", "jobs_jobstatuschange")
            }

    before = shape()
    monkeypatch.setattr(seed_sql, "LARGE_LOAD", 100)
    monkeypatch.setattr(seed_sql, "BATCH_JOBS", 700)  # several batches
    _seed(tenants=2, jobs=2000, days=14)
    assert shape() == before
    assert Job.objects.count() == 2000
    assert JobStatusChange.objects.filter(job__isnull=True).count() == 0
    # The same seed gives the same rows (deterministic draws), created in id order.
    created = list(Job.objects.order_by("id").values_list("created_at", flat=True))
    assert created == sorted(created)


@pytest.mark.django_db
def test_seeding_twice_adds_jobs_with_new_ids_and_external_ids():
    _seed(tenants=1, jobs=300, days=14)
    _seed(tenants=1, jobs=200, days=14)
    assert Job.objects.count() == 500
    assert Job.objects.values("external_id").distinct().count() == 500
    assert Job.objects.values("public_id").distinct().count() == 500
