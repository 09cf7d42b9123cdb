import datetime as dt
import threading

import pytest
from django.db import connection, transaction

from apps.jobs import services
from apps.jobs.constants import ALLOWED_TRANSITIONS, TERMINAL_STATUSES
from apps.jobs.exceptions import IllegalTransition, InvalidProgress
from apps.jobs.models import Job, JobStatus, JobStatusChange, StatusSource
from tests import factories

ALL = list(JobStatus)


def _job_in(status, **extra):
    job = factories.JobFactory()
    path = {
        JobStatus.QUEUED: [],
        JobStatus.RUNNING: [JobStatus.RUNNING],
        JobStatus.PAUSED: [JobStatus.RUNNING, JobStatus.PAUSED],
        JobStatus.SUCCEEDED: [JobStatus.RUNNING, JobStatus.SUCCEEDED],
        JobStatus.FAILED: [JobStatus.RUNNING, JobStatus.FAILED],
        JobStatus.CANCELLED: [JobStatus.CANCELLED],
    }[status]
    for step in path:
        job = services.change_status(job, step)
    return job


EXPECTED_LEGAL = {
    ("queued", "running"), ("queued", "cancelled"), ("queued", "failed"),
    ("running", "paused"), ("running", "succeeded"), ("running", "failed"), ("running", "cancelled"),
    ("paused", "running"), ("paused", "failed"), ("paused", "cancelled"),
}  # fmt: skip


def test_the_state_machine_is_exactly_the_documented_one():
    legal = {(a, b) for a, nexts in ALLOWED_TRANSITIONS.items() for b in nexts}
    assert legal == EXPECTED_LEGAL
    assert {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED} == TERMINAL_STATUSES


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ALL)
@pytest.mark.parametrize("to_status", ALL)
def test_every_pair_of_statuses_is_allowed_or_refused_as_the_machine_says(from_status, to_status):
    job = _job_in(from_status)
    history_before = JobStatusChange.objects.filter(job=job).count()
    legal = (from_status, to_status) in EXPECTED_LEGAL
    same_with_progress = from_status == to_status and from_status in (JobStatus.RUNNING, JobStatus.PAUSED)
    if legal:
        changed = services.change_status(job, to_status, source=StatusSource.API)
        assert changed.status == to_status
        assert JobStatusChange.objects.filter(job=job).count() == history_before + 1
    elif same_with_progress:
        changed = services.change_status(job, to_status, progress=42)
        assert changed.progress == 42
        assert JobStatusChange.objects.filter(job=job).count() == history_before
    else:
        with pytest.raises(IllegalTransition) as caught:
            services.change_status(job, to_status)
        assert caught.value.from_status == from_status
        assert str(from_status) in str(caught.value) and str(to_status) in str(caught.value)
        job.refresh_from_db()
        assert job.status == from_status
        assert JobStatusChange.objects.filter(job=job).count() == history_before


@pytest.mark.django_db
def test_it_records_who_why_and_from_where_in_the_history_row(role_users):
    job = factories.JobFactory()
    operator = role_users["operator"]
    services.change_status(job, "running", progress=10, actor=operator, source=StatusSource.ADMIN, reason="vardiya")
    row = JobStatusChange.objects.get(job=job)
    assert (row.from_status, row.to_status, row.progress) == ("queued", "running", 10)
    assert (row.actor, row.source, row.reason) == (operator, "admin", "vardiya")


@pytest.mark.django_db
def test_timestamps_and_duration_follow_the_status():
    job = factories.JobFactory()
    start = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    job = services.change_status(job, "running", at=start)
    assert job.started_at == start and job.finished_at is None
    job = services.change_status(job, "paused", at=start + dt.timedelta(minutes=5))
    job = services.change_status(job, "running", at=start + dt.timedelta(minutes=7))
    assert job.started_at == start, "a resumed job keeps its first start"
    job = services.change_status(job, "succeeded", at=start + dt.timedelta(minutes=12, milliseconds=250))
    assert job.finished_at == start + dt.timedelta(minutes=12, milliseconds=250)
    assert job.duration_ms == 12 * 60 * 1000 + 250
    assert job.progress == 100


@pytest.mark.django_db
def test_a_job_cancelled_before_it_ran_has_no_duration():
    job = services.change_status(factories.JobFactory(), "cancelled")
    assert job.finished_at is not None and job.started_at is None and job.duration_ms is None


@pytest.mark.django_db
@pytest.mark.parametrize("progress", [-1, 101, 50.5, "50", True])
def test_it_refuses_progress_outside_0_to_100_or_not_a_whole_number(progress):
    job = factories.JobFactory()
    with pytest.raises(InvalidProgress):
        services.change_status(job, "running", progress=progress)
    job.refresh_from_db()
    assert job.status == "queued"
    assert not JobStatusChange.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_a_succeeded_job_must_end_at_100_percent():
    job = _job_in(JobStatus.RUNNING)
    with pytest.raises(InvalidProgress):
        services.change_status(job, "succeeded", progress=80)


@pytest.mark.django_db
def test_it_rejects_an_unknown_status():
    with pytest.raises(ValueError):
        services.change_status(factories.JobFactory(), "exploded")


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_neither_job_nor_history_changed():
    job = factories.JobFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.change_status(job, "running")
        raise RuntimeError("the caller's later step failed")
    job.refresh_from_db()
    assert job.status == "queued"
    assert not JobStatusChange.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_the_database_refuses_progress_over_100_even_past_the_service():
    from django.db import IntegrityError

    job = factories.JobFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(progress=101)


@pytest.mark.django_db
def test_bulk_cancel_reports_jobs_it_could_not_cancel(role_users):
    queued, running, done = _job_in(JobStatus.QUEUED), _job_in(JobStatus.RUNNING), _job_in(JobStatus.SUCCEEDED)
    result = services.cancel_jobs([queued, running, done], actor=role_users["operator"], reason="hat arızası")
    assert {j.pk for j in result.cancelled} == {queued.pk, running.pk}
    assert [(j.pk) for j, _ in result.refused] == [done.pk]
    assert "succeeded" in result.refused[0][1]
    done.refresh_from_db()
    assert done.status == "succeeded"


@pytest.mark.django_db
def test_create_job_refuses_catalog_items_of_another_tenant(tenant_a, tenant_b):
    from django.core.exceptions import ValidationError

    post_a = factories.PostFactory(tenant=tenant_a)
    other_type = factories.ModelTypeFactory(tenant=tenant_b)
    with pytest.raises(ValidationError) as caught:
        services.create_job(tenant=tenant_a, model_type=other_type, machine=post_a.machine, post=post_a)
    assert "model_type" in caught.value.message_dict
    assert not Job.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_changes_are_applied_one_after_the_other():
    """Both workers try queued -> running/cancelled at once; the row lock makes exactly one win."""
    job = factories.JobFactory()
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(target):
        try:
            barrier.wait()
            services.change_status(Job.objects.get(pk=job.pk), target)
            outcomes.append(("ok", target))
        except IllegalTransition:
            outcomes.append(("refused", target))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in ("cancelled", "failed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o for o, _ in outcomes) == ["ok", "refused"]
    assert JobStatusChange.objects.filter(job=job).count() == 1
