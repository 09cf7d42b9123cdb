from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import VerifiedSessionOrToken, capability
from apps.core.problems import Problem

from . import selectors, services
from .exceptions import IllegalTransition, InvalidProgress
from .models import StatusSource
from .serializers import JobFilterSerializer, JobOutputSerializer, JobStatusChangeInputSerializer


class JobCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: a page never shifts when new jobs arrive."""

    ordering = "-id"
    page_size_query_param = "limit"

    def paginate_queryset(self, queryset, request, view=None):
        # Read per request (DRF assigns self.page_size while paginating, so a read-only property breaks it).
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        # DRF silently took limit=0, -1 or "abc" as the default size; the schema says minimum 1, so refuse them
        # (422). A limit above API_MAX_PAGE_SIZE is capped, as documented.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise serializers.ValidationError({"limit": [_("A whole number, at least 1.")]})
        return min(value, self.max_page_size)


class JobListApi(generics.ListAPIView):
    permission_classes = [VerifiedSessionOrToken, capability("jobs.view_job")]
    serializer_class = JobOutputSerializer
    pagination_class = JobCursorPagination

    @extend_schema(
        summary="List jobs of your tenants",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, many=True, description="One or more statuses"),
            OpenApiParameter("tenant", OpenApiTypes.STR, description="Tenant slug"),
            OpenApiParameter("machine", OpenApiTypes.STR, description="Machine code"),
            OpenApiParameter("post", OpenApiTypes.STR, description="Post code"),
            OpenApiParameter("model_type", OpenApiTypes.STR, description="Model type code"),
            OpenApiParameter("external_id", OpenApiTypes.STR, description="ERP id"),
            OpenApiParameter("created_from", OpenApiTypes.DATETIME),
            OpenApiParameter("created_to", OpenApiTypes.DATETIME),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1}, description="Page size (capped by API_MAX_PAGE_SIZE)"
            ),
        ],
        responses={200: JobOutputSerializer(many=True), 422: OpenApiResponse(description="Bad filter")},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = JobFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.jobs_visible_to(self.request.user, filters=filters.validated_data)


class JobDetailApi(generics.RetrieveAPIView):
    permission_classes = [VerifiedSessionOrToken, capability("jobs.view_job")]
    serializer_class = JobOutputSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "public_id"

    @extend_schema(
        summary="One job",
        responses={200: JobOutputSerializer, 404: OpenApiResponse(description="Unknown or not yours")},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.jobs_visible_to(self.request.user)


class JobStatusChangeApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("jobs.change_job_status")]

    @extend_schema(
        summary="Change a job's status",
        request=JobStatusChangeInputSerializer,
        responses={
            200: JobOutputSerializer,
            403: OpenApiResponse(description="Missing the jobs.change_job_status capability"),
            404: OpenApiResponse(description="Unknown job, or another tenant's"),
            409: OpenApiResponse(description="The state machine does not allow this transition"),
            422: OpenApiResponse(description="Body failed validation"),
        },
    )
    def post(self, request, public_id):
        job = selectors.job_visible_to(request.user, public_id)
        if job is None:
            raise Problem(status_code=404, slug="not-found", title=_("Not found"), detail=_("No such job."))
        body = JobStatusChangeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = services.change_status(
                job,
                body.validated_data["status"],
                progress=body.validated_data.get("progress"),
                actor=request.user,
                source=StatusSource.API,
                reason=body.validated_data["reason"],
            )
        except IllegalTransition as exc:
            raise Problem(
                status_code=409,
                slug="illegal-transition",
                title=_("Illegal status transition"),
                detail=str(exc.message),
                from_status=exc.from_status,
                to_status=exc.to_status,
                allowed=exc.allowed,
            ) from exc
        except InvalidProgress as exc:
            raise Problem(
                status_code=422, slug="invalid-progress", title=_("Invalid progress"), detail=str(exc.message)
            ) from exc
        return Response(JobOutputSerializer(selectors.job_visible_to(request.user, job.public_id)).data)
