from django.core.files.storage import storages
from django.http import FileResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from knox.auth import TokenAuthentication
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import VerifiedSessionOrToken, capability
from apps.core.problems import Problem

from . import constants, selectors, services
from .export_formats import CONTENT_TYPES, FILE_EXTENSIONS
from .schemas import EXPORT_JSON_SCHEMA
from .serializers import DetailQuerySerializer, ExportCreateSerializer, ExportOutputSerializer, ReportFilterSerializer

# An empty filter value means "any" (the panel's form sends empty fields): documented, so schema and server agree.
_DATE_OR_EMPTY = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}
_FILTER_PARAMS = [
    OpenApiParameter("date_from", _DATE_OR_EMPTY, description="First day (Europe/Istanbul), inclusive; empty: any"),
    OpenApiParameter("date_to", _DATE_OR_EMPTY, description="Last day (Europe/Istanbul), inclusive; empty: any"),
    OpenApiParameter("status", OpenApiTypes.STR, many=True, description="One or more statuses"),
    OpenApiParameter("model_type", OpenApiTypes.STR, description="Model type code"),
    OpenApiParameter("machine", OpenApiTypes.STR, description="Machine code"),
    OpenApiParameter("post", OpenApiTypes.STR, description="Post code"),
    OpenApiParameter("tenant", OpenApiTypes.STR, description="Tenant slug (one of yours)"),
]
_BAD_FILTER = OpenApiResponse(description="Bad filter (problem+json)")


def _not_found():
    return Problem(status_code=404, slug="not-found", title=_("Not found"), detail=_("No such export."))


class ReportSummaryApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("reporting.view_report")]

    @extend_schema(
        summary="Report summary: totals, rates, P50/P95, breakdowns",
        parameters=_FILTER_PARAMS,
        responses={200: OpenApiTypes.OBJECT, 422: _BAD_FILTER},
    )
    def get(self, request):
        filters = ReportFilterSerializer(data=request.query_params, context={"user": request.user})
        filters.is_valid(raise_exception=True)
        return Response(selectors.report_summary(request.user, filters.validated_data))


class ReportDetailApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("reporting.view_report")]

    @extend_schema(
        summary="Report detail: one page of jobs, newest first, over a snapshot",
        parameters=[
            *_FILTER_PARAMS,
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1, "maximum": constants.DETAIL_MAX_PAGE},
                description="1-based page number",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": constants.DETAIL_MAX_LIMIT},
                description="Rows per page",
            ),
            OpenApiParameter(
                "as_of",
                {"type": "integer", "minimum": 0, "maximum": constants.MAX_JOB_ID},
                description="Snapshot from page 1's response",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, 422: _BAD_FILTER},
    )
    def get(self, request):
        query = DetailQuerySerializer(data=request.query_params, context={"user": request.user})
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return Response(
            selectors.report_detail(request.user, q["filters"], page=q["page"], limit=q["limit"], as_of=q["as_of"])
        )


class ReportExportCreateApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("reporting.add_reportexport")]

    @extend_schema(
        summary="Start an export of the report (csv, xlsx or json)",
        request=ExportCreateSerializer,
        responses={202: ExportOutputSerializer, 422: _BAD_FILTER},
    )
    def post(self, request):
        body = ExportCreateSerializer(data=request.data, context={"user": request.user})
        body.is_valid(raise_exception=True)
        try:
            export = services.request_export(
                request.user,
                format=body.validated_data["format"],
                filters=body.validated_data["filters"],
                single_use=body.validated_data["single_use"],
            )
        except services.ExportRefused as exc:
            raise Problem(
                status_code=422,
                slug="export-too-large",
                title=_("Too many rows for this format"),
                detail=exc.message,
                rows=exc.rows,
                suggested_format="csv",
            ) from exc
        export.refresh_from_db()
        return Response(_export_body(request, export), status=202)


def _export_body(request, export):
    link = services.download_link(export)
    return ExportOutputSerializer(export, context={"request": request, "link": link}).data


class ReportExportDetailApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("reporting.view_reportexport")]

    @extend_schema(
        summary="An export's progress and, when done, a signed download link",
        responses={200: ExportOutputSerializer, 404: OpenApiResponse(description="Unknown, or not yours")},
    )
    def get(self, request, export_id):
        export = selectors.exports_visible_to(request.user).filter(pk=export_id).first()
        if export is None:
            raise _not_found()
        return Response(_export_body(request, export))


class _NeverRefuse:
    """An authenticator that names the caller when it can and never refuses: on the download, the signed link
    is the credential, and the session or token only says who followed it (for the audit entry)."""

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            return None


class _SessionIfAny(_NeverRefuse, SessionAuthentication):
    pass


class _TokenIfAny(_NeverRefuse, TokenAuthentication):
    pass


class _SessionIfAnyScheme(OpenApiAuthenticationExtension):
    """The download's optional authenticators only name the downloader; the signed link is the credential."""

    target_class = _SessionIfAny
    name = "downloaderSession"

    def get_security_definition(self, auto_schema):
        return {}

    def get_security_requirement(self, auto_schema):
        return None


class _TokenIfAnyScheme(_SessionIfAnyScheme):
    target_class = _TokenIfAny
    name = "downloaderToken"


def _downloader(request):
    """Who followed the link: a session that passed its authenticator code, or a valid API token; else None."""
    user = request.user
    if not (user and user.is_authenticated):
        return None
    if isinstance(request.successful_authenticator, SessionAuthentication):
        return user if getattr(user, "is_verified", lambda: False)() else None
    return user


class ReportExportDownloadApi(APIView):
    """The signed link is the credential: whoever holds it may download until it expires."""

    authentication_classes = [_SessionIfAny, _TokenIfAny]
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Download an export through its signed link",
        parameters=[OpenApiParameter("token", OpenApiTypes.STR, required=True)],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            403: OpenApiResponse(description="Tampered or foreign link"),
            410: OpenApiResponse(description="Link expired, or a single-use link already used"),
        },
    )
    def get(self, request, export_id):
        try:
            token = request.query_params.get("token", "")
            export = services.open_download(export_id, token, downloader=_downloader(request))
        except services.LinkExpired as exc:
            raise Problem(
                status_code=410,
                slug="link-expired",
                title=_("This download link has expired"),
                detail=_("Ask for a new link on the export's page."),
            ) from exc
        except services.LinkInvalid as exc:
            raise Problem(status_code=403, slug="link-invalid", title=_("This download link is not valid")) from exc
        response = FileResponse(
            storages["exports"].open(export.file_name, "rb"),
            as_attachment=True,
            filename=f"tezgah-rapor-{export.created_at:%Y%m%d-%H%M%S}.{FILE_EXTENSIONS[export.format]}",
            content_type=CONTENT_TYPES[export.format],
        )
        response["X-Checksum-SHA256"] = export.sha256
        response["X-Row-Count"] = str(export.rows_written)
        response["Cache-Control"] = "private, no-store"
        return response


class ReportExportSchemaApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(summary="JSON Schema of JSON report exports", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(EXPORT_JSON_SCHEMA)
