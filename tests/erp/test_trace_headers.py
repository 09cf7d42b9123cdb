"""Outbound ERP calls carry the trace of the request whose change produced them, even when a worker sends
them later (a retry): checked on what the real mock ERP process received."""

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import request_context
from apps.erp import services
from apps.erp.models import ErpSync
from apps.events.models import OutboxEvent
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def _change_through_the_api(role_users, job, capture):
    api = verified_client(APIClient(), role_users["operator"])
    with capture(execute=True):  # the relay and the send run after the request, as a worker would
        response = api.post(
            f"/api/v1/jobs/{job.public_id}/status",
            {"status": "running", "reason": "trace test"},
            format="json",
            HTTP_TRACEPARENT=f"00-{TRACE}-{PARENT}-01",
            HTTP_X_CORRELATION_ID="order-4711",
        )
    assert response.status_code == 200, response.content
    assert response["X-Trace-ID"] == TRACE
    assert request_context.current().trace_id == ""  # nothing of the request is left in this context
    return response


def _trace_of(received: dict) -> tuple[str, str, str]:
    version, trace, span, flags = received["headers"]["traceparent"].split("-")
    assert version == "00" and len(span) == 16
    return trace, span, flags


def test_the_erp_receives_the_originating_requests_trace_on_every_attempt(
    erp_profile, mock_erp, job, role_users, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_RETRY_SCHEDULE = [1]
    mock_erp.plan(status=503, count=1)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _change_through_the_api(role_users, job, django_capture_on_commit_callbacks)
        stored = OutboxEvent.objects.get().trace_context
        assert ErpSync.objects.get().trace_context == stored
        clock.shift(2)
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()  # a retry in a worker: no request context at all
    first, retry = mock_erp.received()
    assert (first["status"], retry["status"]) == (503, 200)
    for received in (first, retry):
        trace, span, flags = _trace_of(received)
        # The trace of the request; the parent span is the request's own span (not the caller's).
        assert (trace, flags) == (TRACE, "01")
        assert span != PARENT and f"-{span}-" in stored["traceparent"]
        assert received["headers"]["X-Trace-ID"] == TRACE
        assert received["headers"]["X-Correlation-ID"] == "order-4711"
        assert received["headers"]["X-Request-Id"]  # the attempt's own id, as before
    assert ErpSync.objects.get().status == "acked"


def test_a_change_made_outside_any_request_sends_no_trace_headers(
    erp_profile, mock_erp, job, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.RUNNING, progress=5)
    [received] = mock_erp.received()
    assert "traceparent" not in {k.lower() for k in received["headers"]}
    assert OutboxEvent.objects.get().trace_context == {}


def test_with_opentelemetry_on_the_send_is_a_client_span_of_the_originating_trace(
    erp_profile, mock_erp, job, role_users, django_capture_on_commit_callbacks
):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from apps.observability import tracing

    exporter = InMemorySpanExporter()
    tracing.setup_tracing(exporter=exporter)
    try:
        _change_through_the_api(role_users, job, django_capture_on_commit_callbacks)
        spans = exporter.get_finished_spans()
    finally:
        tracing.teardown_tracing()
    (server,) = [s for s in spans if s.kind.name == "SERVER"]
    (client,) = [s for s in spans if s.name == "erp.outbound.send"]
    assert client.kind.name == "CLIENT"
    assert f"{client.context.trace_id:032x}" == TRACE
    assert client.parent.span_id == server.context.span_id  # child of the request's span, sent after it ended
    [received] = mock_erp.received()
    assert _trace_of(received)[:2] == (TRACE, f"{client.context.span_id:016x}")
