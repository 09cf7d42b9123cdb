"""OpenTelemetry: Django instrumented, spans exported over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Without the endpoint nothing is instrumented and nothing leaves the process (the trace ids of log lines and
outbound headers come from apps.core.request_context either way). The OTLP exporter reads the standard
OTEL_EXPORTER_OTLP_* variables itself (headers, timeout, certificate).
"""

import contextlib
import logging

from django.conf import settings

logger = logging.getLogger(__name__)
_state = {"provider": None}


def setup_tracing(*, exporter=None, force: bool = False):
    """Instrument Django once per process; `exporter` (tests) replaces the OTLP one. Returns the provider or None."""
    if _state["provider"] is not None:
        return _state["provider"]
    if exporter is None and not settings.OTEL_EXPORTER_OTLP_ENDPOINT and not force:
        return None
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from apps.core import request_context

    provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        # Process-wide, once: the tests pass their own exporter and leave the global provider alone.
        trace.set_tracer_provider(provider)
    request_context.span_source = _current_span
    request_context.client_span_source = _client_span
    # Health probes and scrapes would be most spans and tell nothing.
    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls="healthz,readyz,health/,metrics")
    _state["provider"] = provider
    logger.info("OpenTelemetry tracing on (service %s)", settings.OTEL_SERVICE_NAME)
    return provider


def teardown_tracing() -> None:
    """Undo setup_tracing (tests): Django's middleware list and the span source as they were."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    from apps.core import request_context

    if _state["provider"] is not None:
        DjangoInstrumentor().uninstrument()
        _state["provider"].shutdown()
        _state["provider"] = None
    request_context.span_source = None
    request_context.client_span_source = None


def _current_span():
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", f"{int(context.trace_flags):02x}"


@contextlib.contextmanager
def _client_span(name: str, traceparent: str, attributes: dict | None = None):
    """request_context.client_span's OpenTelemetry half: a CLIENT span whose parent is the stored traceparent."""
    provider = _state["provider"]
    if provider is None:
        yield None
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    tracer = provider.get_tracer("tezgah.outbound")
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes) as span:
        context = span.get_span_context()
        yield f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
