"""Outbound delivery against the real mock ERP process: signing, acks, the retry schedule, DLQ, order."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as live_settings
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.erp import services
from apps.erp.models import DeadLetterCause, ErpOutboundDeadLetter, ErpSync, ErrorClass, SyncStatus
from apps.events.models import OutboxEvent, OutboxStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus, StatusSource

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def change(job, status, capture, **kwargs):
    with capture(execute=True):
        return jobs.change_status(job, status, **kwargs)


def signature(secret, body: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()).decode()


def test_a_status_change_is_delivered_signed_and_acked(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks, progress=10)

    [received] = mock_erp.received()
    sync = ErpSync.objects.get()
    event = OutboxEvent.objects.get()
    body = json.loads(received["body"])
    assert body == {
        "job_id": job.external_id,
        "status": "running",
        "progress": 10,
        "updated_at": body["updated_at"],
        "meta": {
            "seq": 1,
            "event_id": str(event.pk),
            "event_type": "job.status.changed",
            "event_version": 1,
            "portal_job_id": str(job.public_id),
            "from_status": "queued",
        },
    }
    assert received["headers"]["X-Signature"] == signature(SECRET, received["body"])
    assert received["signature_verified"] is True
    assert received["headers"]["Idempotency-Key"] == str(event.pk)
    assert received["headers"]["Content-Type"] == "application/json"
    assert received["headers"]["X-Request-Id"] == sync.request_id
    assert sync.status == SyncStatus.ACKED and sync.acked_at is not None
    assert sync.direction == "outbound" and sync.job_id == job.pk and sync.external_id == job.external_id
    assert sync.body_sha256 == hashlib.sha256(received["body"].encode()).hexdigest()
    assert sync.response_code == 200 and sync.attempt_count == 1
    assert event.status == OutboxStatus.PUBLISHED
    assert list(sync.attempts.values_list("outcome", "response_code")) == [("acked", 200)]


def test_the_status_change_the_outbox_event_and_the_audit_entry_commit_together(erp_profile, job):
    with pytest.raises(RuntimeError), timezone.override("UTC"):
        from django.db import transaction

        with transaction.atomic():
            jobs.change_status(job, JobStatus.RUNNING)
            raise RuntimeError("the caller's transaction fails later")
    assert OutboxEvent.objects.count() == 0
    assert AuditLog.objects.filter(action="job.status.changed").count() == 0
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.event_seq == 0


def test_changes_the_erp_made_are_not_sent_back(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks, source=StatusSource.ERP)
    assert OutboxEvent.objects.get().status == OutboxStatus.PUBLISHED
    assert ErpSync.objects.count() == 0
    assert mock_erp.received() == []


def test_a_redelivered_event_reuses_its_sync_row(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    event = OutboxEvent.objects.get()
    assert services.record_outbound(event).pk == ErpSync.objects.get().pk
    assert ErpSync.objects.count() == 1


def test_500_then_200_is_retried_on_the_schedule_with_the_same_bytes(
    erp_profile, mock_erp, job, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_RETRY_SCHEDULE = [5, 15, 45, 120, 300]
    mock_erp.plan(status=500, count=2)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        start = timezone.now()
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
        sync = ErpSync.objects.get()
        assert sync.status == SyncStatus.QUEUED and sync.retry_count == 1
        assert sync.next_attempt_at == start + timedelta(seconds=5)

        clock.shift(4)
        assert services.deliver_due() == {}  # not due yet
        clock.shift(1)
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()
        sync.refresh_from_db()
        assert sync.retry_count == 2 and sync.next_attempt_at == start + timedelta(seconds=5 + 15)

        clock.shift(15)
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()
    sync.refresh_from_db()
    assert sync.status == SyncStatus.ACKED and sync.attempt_count == 3
    received = mock_erp.received()
    assert [r["status"] for r in received] == [500, 500, 200]
    assert len({r["body"] for r in received}) == 1
    assert len({r["headers"]["Idempotency-Key"] for r in received}) == 1
    assert len({r["headers"]["X-Request-Id"] for r in received}) == 3  # new per attempt
    assert [a.outcome for a in sync.attempts.all()] == ["retry", "retry", "acked"]


def test_the_default_schedule_is_5s_15s_45s_2m_5m_with_ten_percent_jitter():
    assert live_settings.ERP_RETRY_SCHEDULE == [5, 15, 45, 120, 300]
    assert live_settings.ERP_RETRY_JITTER == 0.1
    for number, step in enumerate([5, 15, 45, 120, 300], start=1):
        delays = [services.retry_delay(number, None) for _ in range(200)]
        assert step * 0.9 <= min(delays) and max(delays) <= step * 1.1
        assert max(delays) - min(delays) > 0  # jitter spreads them


def test_exhausted_retries_go_to_the_dlq(erp_profile, mock_erp, job, erp_settings, django_capture_on_commit_callbacks):
    erp_settings.ERP_RETRY_SCHEDULE = [1, 2]
    mock_erp.plan(status=503, count=3)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
        for step in (1, 2):
            clock.shift(step)
            with django_capture_on_commit_callbacks(execute=True):
                services.deliver_due()
    sync = ErpSync.objects.get()
    assert sync.status == SyncStatus.FAILED and sync.attempt_count == 3
    dead = ErpOutboundDeadLetter.objects.get()
    assert (dead.cause, dead.error_class, dead.response_code, dead.attempts) == (
        DeadLetterCause.EXHAUSTED,
        ErrorClass.SERVER,
        503,
        3,
    )


def test_429_with_a_longer_retry_after_is_honoured(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    mock_erp.plan(status=429, retry_after=40)
    with time_machine.travel(timezone.now(), tick=False):
        start = timezone.now()
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
        sync = ErpSync.objects.get()
    assert sync.status == SyncStatus.QUEUED and sync.error_class == ErrorClass.RATE_LIMITED
    assert sync.next_attempt_at == start + timedelta(seconds=40)


def test_a_retry_after_beyond_the_cap_is_capped(
    erp_profile, mock_erp, job, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_RETRY_AFTER_CAP_SECONDS = 60
    mock_erp.plan(status=503, retry_after=86400)
    with time_machine.travel(timezone.now(), tick=False):
        start = timezone.now()
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert ErpSync.objects.get().next_attempt_at == start + timedelta(seconds=60)


def test_400_goes_to_the_dlq_after_one_attempt(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    mock_erp.plan(status=400)
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    sync = ErpSync.objects.get()
    assert sync.status == SyncStatus.FAILED and sync.attempt_count == 1
    dead = ErpOutboundDeadLetter.objects.get()
    assert (dead.cause, dead.error_class, dead.response_code) == (DeadLetterCause.REJECTED, ErrorClass.REJECTED, 400)
    assert dead.is_open


def test_409_for_a_known_idempotency_key_counts_as_delivered(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=409)
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    sync = ErpSync.objects.get()
    assert sync.status == SyncStatus.ACKED and sync.response_code == 409


def test_401_pauses_the_profile_instead_of_dead_lettering(
    erp_profile, mock_erp, job, superuser, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=401, count=1)
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    change(job, JobStatus.PAUSED, django_capture_on_commit_callbacks)
    erp_profile.refresh_from_db()
    assert erp_profile.is_paused and "401" in erp_profile.pause_reason
    assert ErpOutboundDeadLetter.objects.count() == 0
    assert list(ErpSync.objects.order_by("seq").values_list("status", "retry_count")) == [("queued", 0), ("queued", 0)]
    assert len(mock_erp.received()) == 1  # the second waited instead of hammering
    assert AuditLog.objects.filter(action="erp.profile.paused").exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.resume_profile(erp_profile, actor=superuser) == 2
    assert list(ErpSync.objects.order_by("seq").values_list("status", flat=True)) == ["acked", "acked"]
    assert [b["meta"]["seq"] for b in mock_erp.bodies()[1:]] == [1, 2]


def test_a_later_status_waits_for_an_earlier_one_that_is_retrying(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=500, count=1)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks, progress=5)
        change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks, progress=50)
        change(job, JobStatus.SUCCEEDED, django_capture_on_commit_callbacks)
        first, second, third = ErpSync.objects.order_by("seq")
        assert (first.status, second.status, third.status) == ("queued", "queued", "queued")
        assert services.deliver(second.pk) == "waits-for-earlier"
        assert second.attempts.count() == 0
        clock.shift(6)
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()
    assert list(ErpSync.objects.order_by("seq").values_list("status", flat=True)) == ["acked"] * 3
    assert [(b["meta"]["seq"], b["progress"]) for b in mock_erp.bodies()] == [(1, 5), (1, 5), (2, 50), (3, 100)]


def test_a_dead_lettered_status_releases_the_next_one(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    mock_erp.plan(status=422, count=1)
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    change(job, JobStatus.SUCCEEDED, django_capture_on_commit_callbacks)
    assert list(ErpSync.objects.order_by("seq").values_list("seq", "status")) == [(1, "failed"), (2, "acked")]


def test_a_claim_abandoned_by_a_dead_worker_is_taken_over_after_its_lease(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False):
            jobs.change_status(job, JobStatus.RUNNING)
        from apps.events import services as events

        # The relay hands the event on and leases the new message, then its worker dies before sending.
        with django_capture_on_commit_callbacks(execute=False):
            events.relay()
        sync = ErpSync.objects.get()
        assert sync.status == SyncStatus.SENT and sync.claimed_until is not None
        assert services.claim(sync.pk).reason == "not-due"  # nobody else takes a leased row
        assert services.deliver_due() == {}
        clock.shift(timedelta(minutes=2))
        with django_capture_on_commit_callbacks(execute=True):
            assert services.deliver_due() == {"acked": 1}
    sync.refresh_from_db()
    assert sync.status == SyncStatus.ACKED and sync.attempt_count == 2
    assert len(mock_erp.received()) == 1
    assert list(sync.attempts.values_list("number", "outcome")) == [(2, "acked")]


def test_without_a_profile_or_base_url_nothing_is_queued(
    db, mock_erp, erp_settings, job, django_capture_on_commit_callbacks
):
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert ErpSync.objects.count() == 0
    assert OutboxEvent.objects.get().status == OutboxStatus.PUBLISHED


def test_erp_base_url_alone_makes_a_default_profile_signed_with_erp_shared_secret(
    db, mock_erp, erp_settings, job, django_capture_on_commit_callbacks
):
    erp_settings.ERP_BASE_URL = mock_erp.url
    erp_settings.ERP_SHARED_SECRET = SECRET
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert ErpSync.objects.get().status == SyncStatus.ACKED
    assert mock_erp.received()[0]["signature_verified"] is True


def test_a_wrong_key_is_refused_by_the_erp_and_pauses_the_profile(
    db, mock_erp, erp_settings, job, django_capture_on_commit_callbacks
):
    erp_settings.ERP_BASE_URL = mock_erp.url
    erp_settings.ERP_SHARED_SECRET = "not-the-erp-s-key"
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert mock_erp.received()[0]["status"] == 401
    assert services.profile_for_tenant(job.tenant_id).is_paused


def test_a_slow_worker_whose_lease_was_taken_over_does_not_overwrite_the_new_owner(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    from apps.events import services as events

    with time_machine.travel(timezone.now(), tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False):
            jobs.change_status(job, JobStatus.RUNNING)
            events.relay()  # leased by the relay, which then stalls
        stalled = ErpSync.objects.get()
        clock.shift(timedelta(minutes=2))
        mock_erp.plan(status=503)  # the new owner's attempt fails and is scheduled for a retry
        taken_over = services.claim(stalled.pk).row
        assert services.attempt(taken_over) == "retry"
        assert services.attempt(stalled) == "superseded"  # its POST still reaches the ERP...
    row = ErpSync.objects.get()
    assert row.status == SyncStatus.QUEUED and row.retry_count == 1  # ...but the new owner's outcome stands
    assert list(row.attempts.order_by("number").values_list("number", "outcome")) == [(1, "superseded"), (2, "retry")]


def test_a_change_the_erp_made_is_not_sent_back_and_holds_nothing_back(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks, progress=5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # no task runs for it, ever
        jobs.change_status(job, JobStatus.RUNNING, progress=40, source=StatusSource.ERP)
    assert callbacks == []
    change(job, JobStatus.PAUSED, django_capture_on_commit_callbacks)
    assert [(b["meta"]["seq"], b["status"]) for b in mock_erp.bodies()] == [(1, "running"), (3, "paused")]
    assert list(ErpSync.objects.order_by("seq").values_list("seq", "status")) == [(1, "acked"), (3, "acked")]
    erp_event = OutboxEvent.objects.get(aggregate_seq=2)
    assert erp_event.payload["source"] == "erp" and erp_event.status == OutboxStatus.PUBLISHED
