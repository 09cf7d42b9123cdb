"""W3C traceparent, X-Trace-ID and X-Correlation-ID: accepted, echoed, in every log line, and for outbound calls."""

import json
import logging

import pytest
from django.http import JsonResponse
from django.test import Client, override_settings
from django.urls import include, path

from apps.core import request_context
from apps.core.logging import JsonFormatter, RequestContextFilter

# Every request passes the IP-list middleware, which reads the lists from the database when they change.
pytestmark = pytest.mark.django_db

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def _seen(request):
    """What a view (or a service it calls) sees: the context, and what an outbound call would send."""
    logging.getLogger("tests.trace").warning("inside the view")
    return JsonResponse(
        {"traceparent": request_context.current_traceparent(), "headers": request_context.outbound_trace_headers()}
    )


urlpatterns = [path("trace-seen", _seen), path("", include("config.urls"))]


@pytest.fixture
def traced(settings):
    settings.ROOT_URLCONF = __name__
    return Client()


def test_a_callers_traceparent_is_kept_and_this_request_gets_a_span_of_its_own(traced):
    response = traced.get("/trace-seen", HTTP_TRACEPARENT=TRACEPARENT)
    assert response["X-Trace-ID"] == TRACE
    sent = response.json()
    version, trace, span, flags = sent["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE, "01") and span != PARENT and len(span) == 16
    assert sent["headers"]["X-Trace-ID"] == TRACE and sent["headers"]["traceparent"] == sent["traceparent"]


@pytest.mark.parametrize(
    "bad",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        f"00-{TRACE}-0000000000000000-01",
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{TRACE.upper()}x-{PARENT}-01",
        "garbage",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(traced, bad):
    response = traced.get("/trace-seen", HTTP_TRACEPARENT=bad)
    assert response["X-Trace-ID"] != TRACE and len(response["X-Trace-ID"]) == 32


def test_x_trace_id_is_accepted_without_a_traceparent_and_a_correlation_id_is_echoed(traced):
    response = traced.get(
        "/trace-seen", HTTP_X_TRACE_ID="4BF92F35-77B3-4DA6-A3CE-929D0E0E4736", HTTP_X_CORRELATION_ID="order-2026-0042"
    )
    assert response["X-Trace-ID"] == TRACE
    assert response["X-Correlation-ID"] == "order-2026-0042"
    assert response.json()["headers"]["X-Correlation-ID"] == "order-2026-0042"


def test_a_malformed_correlation_id_is_replaced_by_the_trace_id(traced):
    response = traced.get("/trace-seen", HTTP_TRACEPARENT=TRACEPARENT, HTTP_X_CORRELATION_ID="bad\nvalue")
    assert response["X-Correlation-ID"] == TRACE


def test_every_log_line_of_the_request_carries_its_trace_id(traced):
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(self.format(record)))

    handler = Collect()
    handler.addFilter(RequestContextFilter())  # as settings.LOGGING's console handler
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.trace")
    logger.addHandler(handler)
    try:
        traced.get("/trace-seen", HTTP_TRACEPARENT=TRACEPARENT)
    finally:
        logger.removeHandler(handler)
    assert [(line["trace_id"], line["msg"]) for line in lines] == [(TRACE, "inside the view")]


def test_outside_a_request_nothing_is_sent_and_log_lines_say_so():
    assert request_context.current_traceparent() is None
    assert request_context.outbound_trace_headers() == {}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    RequestContextFilter().filter(record)
    assert json.loads(JsonFormatter().format(record))["trace_id"] == "-"


def test_opentelemetry_is_off_without_an_endpoint(settings):
    from apps.observability import tracing

    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
    assert tracing.setup_tracing() is None
    assert not any("opentelemetry" in m for m in settings.MIDDLEWARE)


@override_settings(ROOT_URLCONF=__name__)
def test_opentelemetry_spans_share_the_trace_of_logs_and_outbound_headers(settings):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from apps.observability import tracing

    exporter = InMemorySpanExporter()
    tracing.setup_tracing(exporter=exporter)
    try:
        response = Client().get("/trace-seen", HTTP_TRACEPARENT=TRACEPARENT)
        spans = exporter.get_finished_spans()
    finally:
        tracing.teardown_tracing()
    assert response["X-Trace-ID"] == TRACE
    (span,) = [s for s in spans if s.kind.name == "SERVER"]
    assert f"{span.context.trace_id:032x}" == TRACE
    assert f"{span.parent.span_id:016x}" == PARENT
    # The outbound traceparent names OpenTelemetry's server span as the parent of the next hop.
    assert response.json()["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"
    assert not any("opentelemetry" in m for m in settings.MIDDLEWARE)
