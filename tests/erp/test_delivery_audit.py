"""ERP delivery failures and dead-letter moves reach the audit trail (and so the SIEM feed) once per state change
of a message or breaker, never once per retry: checked against the real mock ERP process."""

from collections import Counter

import pytest
import time_machine
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.models import AuditLog
from apps.core import request_context
from apps.erp import services
from apps.erp.models import ErpSync, ErpSyncAttempt, SyncStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from apps.siem import services as siem
from apps.siem.models import SiemRecord
from tests import factories

pytestmark = pytest.mark.django_db

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _entries(action):
    return list(AuditLog.objects.filter(action=action).order_by("pk"))


def _change(tenant, capture, *, traced=False):
    job = factories.JobFactory(tenant=tenant)
    token = None
    if traced:  # as RequestContextMiddleware would set it for a request with this trace
        token = request_context.activate(
            request_context.RequestContext(request_id="req-dlq-0001", trace_id=TRACE, span_id="b7ad6b7169203331")
        )
    try:
        with capture(execute=True):
            jobs.change_status(job, JobStatus.RUNNING)
    finally:
        if token is not None:
            request_context.deactivate(token)
    return ErpSync.objects.get(job=job)


def test_an_outage_is_one_first_failure_per_message_and_one_breaker_open_and_close(
    erp_profile, mock_erp, tenant_a, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_BREAKER_FAILURES = 2
    erp_settings.ERP_BREAKER_COOLDOWN_SECONDS = 30
    erp_settings.ERP_RETRY_SCHEDULE = [1, 1, 1, 1, 1, 1]
    mock_erp.plan(status=503, count=5)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        rows = [_change(tenant_a, django_capture_on_commit_callbacks) for _ in range(3)]
        for _ in range(4):  # cool-downs pass, probes fail, until the mock ERP answers again
            clock.shift(31)
            with django_capture_on_commit_callbacks(execute=True):
                services.deliver_due()
        assert services.breaker(erp_profile).state().state == "closed"
    assert set(ErpSync.objects.values_list("status", flat=True)) == {SyncStatus.ACKED}
    failed_attempts = ErpSyncAttempt.objects.filter(outcome="retry")
    failed_messages = set(failed_attempts.values_list("sync_id", flat=True))
    assert failed_attempts.count() == 5 and len(failed_messages) < 5  # some message failed more than once
    failures = _entries("erp.delivery.failed")
    # One entry per message that failed, none for its later failed retries.
    assert Counter(int(e.object_id) for e in failures) == Counter(failed_messages)
    assert {e.payload["error_class"] for e in failures} == {"server"}
    assert {e.payload["response_code"] for e in failures} == {503}
    assert all(e.tenant_id == tenant_a.pk for e in failures)
    # The breaker opened once (failed probes keep it open: no new entry) and closed once.
    [opened] = _entries("erp.breaker.opened")
    [closed] = _entries("erp.breaker.closed")
    assert opened.payload["breaker"] == closed.payload["breaker"] == f"erp:{erp_profile.pk}"
    assert opened.pk < closed.pk
    assert not _entries("erp.dlq.moved")
    assert len(rows) == 3


def test_a_dead_letter_move_is_audited_and_shipped_with_the_originating_trace(
    erp_profile, mock_erp, tenant_a, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_BREAKER_FAILURES = 10
    erp_settings.ERP_RETRY_SCHEDULE = [1]
    mock_erp.plan(status=503, count=2)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        exhausted = _change(tenant_a, django_capture_on_commit_callbacks, traced=True)
        clock.shift(2)
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()
    mock_erp.plan(status=422, count=1)
    rejected = _change(tenant_a, django_capture_on_commit_callbacks)
    exhausted.refresh_from_db()
    rejected.refresh_from_db()
    assert (exhausted.status, rejected.status) == (SyncStatus.FAILED, SyncStatus.FAILED)

    moved = {int(e.object_id): e for e in _entries("erp.dlq.moved")}
    assert set(moved) == {exhausted.pk, rejected.pk}
    assert (moved[exhausted.pk].payload["cause"], moved[exhausted.pk].payload["attempts"]) == ("exhausted", 2)
    assert (moved[rejected.pk].payload["cause"], moved[rejected.pk].payload["response_code"]) == ("rejected", 422)
    assert moved[exhausted.pk].payload["trace_id"] == TRACE
    assert "trace_id" not in moved[rejected.pk].payload  # changed outside any request
    # The exhausted message failed twice: one failure entry; the rejected one went straight to the DLQ.
    assert [int(e.object_id) for e in _entries("erp.delivery.failed")] == [exhausted.pk]

    audit.seal_pending()
    siem.collect()
    shipped = {r.envelope["payload_redacted"]["object_id"]: r for r in SiemRecord.objects.filter(event="erp.dlq.moved")}
    assert set(shipped) == {str(exhausted.pk), str(rejected.pk)}
    record = shipped[str(exhausted.pk)]
    assert record.level == "ERROR" and record.envelope["trace_id"] == TRACE
    assert len(shipped[str(rejected.pk)].envelope["trace_id"]) == 32
    assert SiemRecord.objects.filter(event="erp.delivery.failed").count() == 1
