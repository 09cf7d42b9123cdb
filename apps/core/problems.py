"""RFC 9457 problem details: every API error is `application/problem+json` with a stable `type`."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_default_handler

from . import request_context

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"


class Problem(exceptions.APIException):
    """An API error that knows its problem type slug; raise it from services' callers in API views."""

    def __init__(self, *, status_code: int, slug: str, title: str, detail: str = "", **extra):
        self.status_code = status_code
        self.slug = slug
        self.title = title
        self.extra = extra
        super().__init__(detail=detail or title)


# DRF exception class -> (slug, title). The slugs are the stable part: docs/api.md lists them. Titles are
# lazy, so a problem reads in the request's language (Accept-Language, Turkish by default) like DRF's details.
_DRF_TYPES = {
    exceptions.ValidationError: ("validation-error", _("The request did not validate")),
    exceptions.ParseError: ("malformed-request", _("The request body could not be parsed")),
    exceptions.NotAuthenticated: ("not-authenticated", _("Authentication is required")),
    exceptions.AuthenticationFailed: ("authentication-failed", _("Authentication failed")),
    exceptions.PermissionDenied: ("permission-denied", _("You may not do this")),
    exceptions.NotFound: ("not-found", _("Not found")),
    exceptions.MethodNotAllowed: ("method-not-allowed", _("Method not allowed")),
    exceptions.NotAcceptable: ("not-acceptable", _("No acceptable representation")),
    exceptions.UnsupportedMediaType: ("unsupported-media-type", _("Unsupported media type")),
    exceptions.Throttled: ("rate-limited", _("Too many requests")),
}


def type_uri(slug: str) -> str:
    return f"{settings.PROBLEM_TYPE_PREFIX}{slug}"


def problem_body(*, status_code: int, slug: str, title: str, detail: str = "", instance: str = "", **extra):
    body = {"type": type_uri(slug), "title": str(title), "status": status_code}
    if detail:
        body["detail"] = str(detail)
    if instance:
        body["instance"] = instance
    body["request_id"] = request_context.current().request_id
    body.update(extra)
    return body


def problem_response(*, status_code: int, slug: str, title: str, detail: str = "", instance: str = "", **extra):
    """A plain Django response carrying a problem; for code outside DRF (middleware, error handlers)."""
    body = problem_body(status_code=status_code, slug=slug, title=title, detail=detail, instance=instance, **extra)
    return JsonResponse(body, status=status_code, content_type=CONTENT_TYPE, json_dumps_params={"ensure_ascii": False})


def _slug_and_title(exc):
    if isinstance(exc, Problem):
        return exc.slug, exc.title
    for cls in type(exc).__mro__:
        if cls in _DRF_TYPES:
            return _DRF_TYPES[cls]
    return "error", _("Request failed")


def drf_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: turn every error into problem+json; schema errors are 422."""
    # DRF's own handler maps these two Django exceptions internally but hands us back the original.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, SuspiciousOperation):
        # Too many form fields, a body over DATA_UPLOAD_MAX_MEMORY_SIZE...: the caller's fault, not a 500
        # (found by the schemathesis run, tests/contract).
        exc = exceptions.ParseError(str(exc))
    response = drf_default_handler(exc, context)
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""
    if response is None:
        logger.exception("Unhandled API error")
        return problem_response(
            status_code=500, slug="server-error", title=_("Internal server error"), instance=instance
        )
    slug, title = _slug_and_title(exc)
    extra = dict(getattr(exc, "extra", {}))
    detail = ""
    if isinstance(exc, exceptions.ValidationError):
        response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        extra["errors"] = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        detail = _("See errors for the fields that failed.")
    elif isinstance(exc.detail, str):
        detail = exc.detail
    else:
        extra["errors"] = response.data
    response.data = problem_body(
        status_code=response.status_code, slug=slug, title=title, detail=detail, instance=instance, **extra
    )
    response.content_type = CONTENT_TYPE
    return response


# API paths outside /api/ (the seed's /reports/ and the ERP operator endpoints) answer problems too.
_PROBLEM_PREFIXES = ("/api/", "/internal/", "/reports/", "/forensics/", "/admin/erp/replay")


def _wants_problem(request) -> bool:
    return request.path.startswith(_PROBLEM_PREFIXES)


def handler404(request, exception=None):
    from django.views.defaults import page_not_found

    if _wants_problem(request):
        return problem_response(status_code=404, slug="not-found", title=_("Not found"), instance=request.path)
    return page_not_found(request, exception)


def handler500(request):
    from django.views.defaults import server_error

    if _wants_problem(request):
        return problem_response(status_code=500, slug="server-error", title=_("Internal server error"))
    return server_error(request)


def handler403(request, exception=None):
    from django.views.defaults import permission_denied

    if _wants_problem(request):
        return problem_response(status_code=403, slug="permission-denied", title=_("You may not do this"))
    return permission_denied(request, exception)


def handler400(request, exception=None):
    from django.views.defaults import bad_request

    if _wants_problem(request):
        return problem_response(status_code=400, slug="malformed-request", title=_("Bad request"))
    return bad_request(request, exception)
