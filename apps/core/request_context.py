"""Per-request values (request id, trace context, client IP, user) that logs and services read without a request.

Trace context (issue 15): W3C `traceparent` is accepted from the caller (else seed 001's `X-Trace-ID`), the
request gets a span id of its own, and `current_traceparent()` / `outbound_trace_headers()` give what an
outbound call (ERP, SIEM, webhooks) sends so that the receiver's spans join the same trace.
"""

import contextlib
import contextvars
import re
import secrets
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = "-"
    client_ip: str = ""
    user_id: int | None = None
    # W3C trace context: 32 hex trace id, this request's own 16 hex span id, the caller's flags.
    trace_id: str = ""
    span_id: str = ""
    trace_flags: str = "01"
    # The caller's X-Correlation-ID (a business transaction spanning several traces), else the trace id.
    correlation_id: str = ""


# The default is a frozen dataclass, so sharing it between contexts is safe.
_current = contextvars.ContextVar("tezgah_request_context", default=RequestContext())  # noqa: B039

# A caller's id is echoed into logs and headers, so only a short, plain token is accepted.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# W3C Trace Context level 1: version 00 (later versions may append fields after the flags).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def new_request_id(candidate: str | None = None) -> str:
    """Return the caller's request id when it is well formed, otherwise a fresh one."""
    if candidate and _ACCEPTABLE_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def new_span_id() -> str:
    return secrets.token_hex(8)


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid W3C traceparent, else None (all-zero ids are invalid)."""
    match = _TRACEPARENT.match((value or "").strip().lower())
    if not match:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return trace_id, span_id, flags


def trace_from_headers(traceparent: str | None, x_trace_id: str | None, x_correlation_id: str | None):
    """(trace id, flags, correlation id) for a request: its traceparent's trace, else a well-formed X-Trace-ID
    (32 hex digits, or a UUID), else a new one. The correlation id is the caller's when well formed."""
    parsed = parse_traceparent(traceparent)
    if parsed:
        trace_id, flags = parsed[0], parsed[2]
    else:
        candidate = (x_trace_id or "").strip().lower().replace("-", "")
        trace_id = candidate if _TRACE_ID.match(candidate) and set(candidate) != {"0"} else secrets.token_hex(16)
        flags = "01"
    correlation_id = x_correlation_id if x_correlation_id and _ACCEPTABLE_REQUEST_ID.match(x_correlation_id) else ""
    return trace_id, flags, correlation_id or trace_id


# Set by apps.observability.tracing when OpenTelemetry is on: returns (trace id, span id, flags) of the span
# OpenTelemetry's middleware opened for this request, so that logs and outbound headers name the same trace.
span_source = None
# Set by apps.observability.tracing when OpenTelemetry is on: (name, traceparent, attributes) -> a context manager
# that opens a CLIENT span, child of `traceparent`, and yields the traceparent naming that span.
client_span_source = None


@contextlib.contextmanager
def client_span(name: str, traceparent: str | None, attributes: dict | None = None):
    """A CLIENT span around an outbound call made for stored work (an ERP message, possibly sent long after its
    request in another process), child of the stored `traceparent`. Yields the traceparent the call sends:
    the new span's when OpenTelemetry is on, else None (send the stored one)."""
    if client_span_source is None or not traceparent:
        yield None
        return
    with client_span_source(name, traceparent, attributes) as sent:
        yield sent


def current() -> RequestContext:
    return _current.get()


def current_traceparent() -> str | None:
    """The `traceparent` an outbound call made now sends (this request's trace and span), or None outside one."""
    context = _current.get()
    if not context.trace_id:
        return None
    return f"00-{context.trace_id}-{context.span_id or new_span_id()}-{context.trace_flags}"


def outbound_trace_headers() -> dict[str, str]:
    """Headers an outbound HTTP call adds: traceparent, X-Trace-ID, X-Correlation-ID and X-Request-Id (empty
    outside a request, e.g. in a Celery task that has no context of its own)."""
    context = _current.get()
    if not context.trace_id:
        return {}
    headers = {"traceparent": current_traceparent(), "X-Trace-ID": context.trace_id}
    if context.correlation_id:
        headers["X-Correlation-ID"] = context.correlation_id
    if context.request_id != RequestContext.request_id:
        headers["X-Request-Id"] = context.request_id
    return headers


def trace_snapshot() -> dict[str, str]:
    """What to store beside work done later (an outbox event, an ERP message) so that the call it makes carries
    the trace of the change that caused it: {"traceparent", "correlation_id", "request_id"}, or {} outside a
    request. The traceparent names this request's span as the parent."""
    context = _current.get()
    if not context.trace_id:
        return {}
    snapshot = {"traceparent": current_traceparent(), "correlation_id": context.correlation_id or context.trace_id}
    if context.request_id != RequestContext.request_id:
        snapshot["request_id"] = context.request_id
    return snapshot


def headers_for_snapshot(snapshot: dict | None, traceparent: str | None = None) -> dict[str, str]:
    """Outbound headers for work stored with `trace_snapshot()`: the stored trace, `traceparent` when the caller
    opened a span of its own (its id is then the parent the receiver sees), X-Trace-ID and X-Correlation-ID.
    Empty for a snapshot with no valid traceparent (work queued before trace context was stored)."""
    parsed = parse_traceparent((snapshot or {}).get("traceparent"))
    if parsed is None:
        return {}
    trace_id, span_id, flags = parsed
    headers = {"traceparent": traceparent or f"00-{trace_id}-{span_id}-{flags}", "X-Trace-ID": trace_id}
    correlation = (snapshot or {}).get("correlation_id") or ""
    headers["X-Correlation-ID"] = correlation if _ACCEPTABLE_REQUEST_ID.match(correlation) else trace_id
    return headers


def activate(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)
