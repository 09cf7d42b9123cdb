"""Request context: a request id and a trace context (W3C traceparent, X-Trace-ID, X-Correlation-ID) on every
request, response and log line, and the resolved client IP; `Cache-Control: no-store` on what must not be
kept by a browser or a proxy."""

from django.utils.cache import patch_cache_control

from . import request_context
from .client_ip import client_ip


class RequestContextMiddleware:
    """Outermost middleware, so even errors raised by later middleware carry the request id."""

    header = "X-Request-Id"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_context.new_request_id(request.headers.get(self.header))
        request.client_ip = client_ip(request.META)
        meta = request.META
        trace_id, flags, correlation_id = request_context.trace_from_headers(
            meta.get("HTTP_TRACEPARENT"), meta.get("HTTP_X_TRACE_ID"), meta.get("HTTP_X_CORRELATION_ID")
        )
        span_id = request_context.new_span_id()
        if request_context.span_source is not None:
            trace_id, span_id, flags = request_context.span_source() or (trace_id, span_id, flags)
        request.trace_id = trace_id
        token = request_context.activate(
            request_context.RequestContext(
                request_id=request.request_id,
                client_ip=request.client_ip,
                trace_id=trace_id,
                span_id=span_id,
                trace_flags=flags,
                correlation_id=correlation_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            request_context.deactivate(token)
        response[self.header] = request.request_id
        response["X-Trace-ID"] = trace_id
        response["X-Correlation-ID"] = correlation_id
        return response


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response to a signed-in user and on every API, report and forensic
    answer (tokens, signed export links, report data), whoever asked: no browser history, back button or
    shared proxy may keep them. Responses that set their own Cache-Control keep it, plus no-store."""

    prefixes = ("/api/", "/reports/", "/forensics/", "/admin/", "/panel/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if request.path.startswith(self.prefixes) or (user is not None and user.is_authenticated):
            patch_cache_control(response, no_store=True, private=True)
        return response
