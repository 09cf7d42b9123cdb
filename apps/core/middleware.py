"""Request context: a request id on every request, response and log line, and the resolved client IP."""

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
        token = request_context.activate(
            request_context.RequestContext(request_id=request.request_id, client_ip=request.client_ip)
        )
        try:
            response = self.get_response(request)
        finally:
            request_context.deactivate(token)
        response[self.header] = request.request_id
        return response
