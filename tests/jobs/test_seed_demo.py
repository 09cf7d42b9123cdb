import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from apps.jobs.models import Job, JobStatus, JobStatusChange


@pytest.mark.django_db
def test_seed_demo_creates_jobs_in_every_status_with_a_tenth_queued(capsys):
    call_command("seed_demo", tenants=2, jobs=3000, password="demo-password-for-tests")
    counts = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    assert set(counts) == set(JobStatus.values)
    assert sum(counts.values()) == 3000
    assert counts["queued"] >= 300
    assert Job.objects.values("tenant").distinct().count() == 2
    assert Job.objects.values("machine").distinct().count() >= 10
    out = capsys.readouterr().out
    assert "3000 jobs" in out and "analist" in out


@pytest.mark.django_db
def test_seeded_jobs_are_consistent_with_their_history_and_durations():
    call_command("seed_demo", tenants=1, jobs=1500, password="demo-password-for-tests")
    finished = Job.objects.filter(status__in=["succeeded", "failed"], started_at__isnull=False)
    assert finished.exists()
    for job in finished[:200]:
        expected = int((job.finished_at - job.started_at).total_seconds() * 1000)
        assert abs(job.duration_ms - expected) <= 1
        assert job.created_at <= job.started_at <= job.finished_at
        last = JobStatusChange.objects.filter(job=job).order_by("changed_at").last()
        assert last.to_status == job.status
    assert not Job.objects.filter(status="queued", started_at__isnull=False).exists()
    assert not Job.objects.filter(status="succeeded").exclude(progress=100).exists()
    durations = sorted(Job.objects.filter(duration_ms__isnull=False).values_list("duration_ms", flat=True))
    assert durations[len(durations) // 10] * 2 < durations[9 * len(durations) // 10], "durations spread out"


@pytest.mark.django_db
def test_seeded_ids_leave_the_sequences_usable(tenant_a):
    from tests import factories

    call_command("seed_demo", tenants=1, jobs=50, password="demo-password-for-tests")
    job = factories.JobFactory()
    assert job.pk > Job.objects.exclude(pk=job.pk).order_by("-pk").first().pk


@pytest.mark.django_db
def test_if_empty_does_nothing_when_jobs_exist(capsys):
    call_command("seed_demo", tenants=1, jobs=10, password="demo-password-for-tests")
    call_command("seed_demo", tenants=1, jobs=10, if_empty=True)
    assert Job.objects.count() == 10
    assert "already present" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs", [{"tenants": 0}, {"tenants": 99}, {"jobs": -1}])
def test_seed_demo_explains_bad_arguments(kwargs):
    with pytest.raises(CommandError):
        call_command("seed_demo", **kwargs)
