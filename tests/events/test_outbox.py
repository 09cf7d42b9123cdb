"""The transactional outbox: schema-checked events, the relay sweep, retries of failing subscribers."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.events import registry, services
from apps.events.models import OutboxEvent, OutboxStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a)


@pytest.fixture
def recorder():
    seen = []
    registry.subscribe("job.status.changed", seen.append, key="test.recorder")
    yield seen
    registry.subscribe("job.status.changed", lambda e: None, key="test.recorder")


def test_a_status_change_writes_a_versioned_event(job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        jobs.change_status(job, JobStatus.RUNNING, progress=20, reason="başladı")
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.event_version, event.status) == ("job.status.changed", 1, OutboxStatus.PENDING)
    assert (event.aggregate_type, event.aggregate_id, event.aggregate_seq) == ("jobs.job", str(job.pk), 1)
    assert event.payload["from_status"] == "queued" and event.payload["status"] == "running"
    assert event.payload["progress"] == 20 and event.payload["reason"] == "başladı"
    assert event.envelope()["aggregate"] == {"type": "jobs.job", "id": str(job.pk), "seq": 1}


def test_progress_updates_emit_events_in_sequence_and_repeats_do_not(job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        jobs.change_status(job, JobStatus.RUNNING, progress=10)
        jobs.change_status(job, JobStatus.RUNNING, progress=40)
        jobs.change_status(job, JobStatus.RUNNING, progress=40)  # nothing changed
    assert list(OutboxEvent.objects.order_by("aggregate_seq").values_list("aggregate_seq", flat=True)) == [1, 2]


def test_the_relay_sweep_hands_on_events_whose_task_was_lost(job, recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down at commit
        jobs.change_status(job, JobStatus.RUNNING)
    assert recorder == []
    assert services.relay() == 1
    assert [e.payload["status"] for e in recorder] == ["running"]
    assert OutboxEvent.objects.get().status == OutboxStatus.PUBLISHED
    assert services.relay() == 0  # published events are not handed on twice


def test_a_failing_subscriber_is_retried_with_backoff_then_marked_failed(
    job, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    calls = []

    def broken(event):
        calls.append(event.pk)
        raise ConnectionError("downstream is down")

    registry.subscribe("job.status.changed", broken, key="test.broken")
    try:
        with time_machine.travel(timezone.now(), tick=False) as clock:
            with django_capture_on_commit_callbacks(execute=True):
                jobs.change_status(job, JobStatus.RUNNING)
            event = OutboxEvent.objects.get()
            assert (event.status, event.attempts, "downstream is down" in event.last_error) == ("pending", 1, True)
            assert event.next_attempt_at == timezone.now() + timedelta(seconds=2)
            assert services.relay() == 0 and len(calls) == 1  # not due yet
            clock.shift(2)
            services.relay()
            clock.shift(4)
            services.relay()
            event.refresh_from_db()
            assert (event.status, event.attempts, len(calls)) == ("failed", 3, 3)
            from apps.erp.models import ErpSync

            assert ErpSync.objects.count() == 0  # the other subscribers' work was rolled back with it
    finally:
        registry.subscribe("job.status.changed", lambda e: None, key="test.broken")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_failed([event]) == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("published", 1)  # the retry ran and nobody fails any more


def test_an_event_whose_relay_died_is_taken_over_after_its_lease(job, recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        jobs.change_status(job, JobStatus.RUNNING)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert len(services.claim()) == 1  # this relay dies now
        assert services.claim() == []
        clock.shift(61)
        assert services.relay() == 1
    assert len(recorder) == 1


BAD_PAYLOAD = {"job_id": "00000000-0000-0000-0000-000000000000", "tenant_id": 1, "from_status": "queued",
               "status": "running", "progress": 101, "updated_at": "2026-11-23T10:00:00Z", "seq": 1,
               "source": "api"}  # fmt: skip


def test_payloads_are_checked_against_the_registered_schema(db):
    with pytest.raises(registry.InvalidEventPayload, match="progress"):
        services.publish(
            "job.status.changed",
            version=1,
            aggregate_type="jobs.job",
            aggregate_id=1,
            payload={
                "job_id": "00000000-0000-0000-0000-000000000000",
                "tenant_id": 1,
                "from_status": "queued",
                "status": "running",
                "progress": 101,
                "updated_at": "2026-11-23T10:00:00Z",
                "seq": 1,
                "source": "api",
            },
        )
    with pytest.raises(registry.UnknownEventType):
        services.publish("job.status.changed", version=2, aggregate_type="x", aggregate_id=1, payload={})
    assert OutboxEvent.objects.count() == 0


@pytest.fixture
def choosy_recorder():
    """A subscriber that acts only on changes made by the ERP."""
    seen = []
    registry.subscribe("job.status.changed", seen.append, key="test.choosy", wants=lambda p: p["source"] == "erp")
    yield seen
    registry.subscribe("job.status.changed", lambda e: None, key="test.choosy", wants=lambda p: False)


def test_a_subscriber_is_handed_only_the_events_it_wants(job, choosy_recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        jobs.change_status(job, JobStatus.RUNNING, source="admin")
        jobs.change_status(job, JobStatus.RUNNING, progress=30, source="erp")
    assert services.relay() == 2
    assert [e.payload["source"] for e in choosy_recorder] == ["erp"]


def test_an_event_no_subscriber_wants_is_recorded_as_published_with_nothing_enqueued(
    job, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(registry, "wanted", lambda name, payload: False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        jobs.change_status(job, JobStatus.RUNNING, progress=20)
    event = OutboxEvent.objects.get()
    assert event.status == OutboxStatus.PUBLISHED and event.processed_at is not None
    assert event.payload["progress"] == 20, "kept in the outbox like any event"
    assert callbacks == [], "no dispatch task for an event nobody acts on"
    assert services.relay() == 0


def test_wanted_asks_every_subscriber(choosy_recorder):
    assert registry.wanted("job.status.changed", {"source": "erp"})
    assert registry.wanted("job.status.changed", {"source": "admin"}), "the ERP subscriber wants portal changes"
    assert registry.subscribers("job.status.changed", {"source": "erp"}) == [
        (key, handler)
        for key, handler in registry.subscribers("job.status.changed")
        # billing (issue 19) wants of the ERP's own changes only those that finish a job (none here)
        if key not in ("erp.outbound", "billing.usage")
    ], "the ERP subscriber does not want the ERP's own changes"
