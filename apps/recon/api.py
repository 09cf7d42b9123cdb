"""Recon API: upload an ERP export (`POST /api/v1/recon/files`) and read a run."""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import scope_to_tenants
from apps.core.permissions import VerifiedSessionOrToken, capability
from apps.core.problems import Problem
from apps.erp.models import IntegrationProfile

from . import selectors, services
from .models import FileSource, FileStatus


def _file_out(entry):
    return {
        "id": entry.pk,
        "name": entry.name,
        "sha256": entry.sha256,
        "size": entry.size,
        "status": entry.status,
        "format": entry.file_format,
        "encoding": entry.encoding,
        "delimiter": entry.delimiter,
        "rows": entry.row_count,
        "error_count": entry.error_count,
        "errors": entry.errors,
        "formula_count": entry.formula_count,
        "formula_cells": entry.formula_cells,
        "duplicate_of": entry.duplicate_of_id,
        "created_at": entry.created_at,
    }


def _run_out(recon_run):
    return {
        "id": recon_run.pk,
        "file": recon_run.file_id,
        "input_hashes": recon_run.input_hashes,
        "config_version": recon_run.config.version,
        "counts": recon_run.counts,
        "cleared": recon_run.cleared_count,
        "result_sha256": recon_run.result_sha256,
        "duration_ms": recon_run.duration_ms,
        "started_by": recon_run.started_by_id,
        "started_at": recon_run.started_at,
    }


class ReconFileUploadApi(APIView):
    """Register and load an ERP export; by default reconcile it at once (needs `recon.run_recon` too)."""

    permission_classes = [VerifiedSessionOrToken, capability("recon.add_reconfile")]
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        profile = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
        force = serializers.BooleanField(default=False)
        encoding = serializers.ChoiceField(choices=["", "utf-8", "utf-8-sig", "cp1254", "iso-8859-9"], default="")
        delimiter = serializers.ChoiceField(choices=["", ",", ";", "\t", "|"], default="")
        run = serializers.BooleanField(default=True)

    @extend_schema(
        summary="Upload an ERP export file (CSV or XLSX) for reconciliation",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OpenApiTypes.OBJECT,
            409: OpenApiResponse(description="The same file was registered before (problem+json with `first`)"),
            422: OpenApiResponse(description="The file did not validate (problem+json with `errors`)"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        upload = values["file"]
        if upload.size > settings.RECON_MAX_FILE_BYTES:
            raise Problem(status_code=413, slug="file-too-large", title=_("The file is too large."))
        if values["run"] and not request.user.has_perm("recon.run_recon"):
            raise Problem(
                status_code=403, slug="permission-denied", title=_("You need the recon.run_recon capability.")
            )
        profile = scope_to_tenants(IntegrationProfile.objects.filter(pk=values["profile"]), request.user).first()
        if profile is None:
            raise Problem(status_code=404, slug="not-found", title=_("Not found"), detail=_("No such profile."))
        try:
            entry = services.register_file(
                upload.file,
                name=upload.name,
                profile=profile,
                source=FileSource.API,
                actor=request.user,
                force=values["force"],
                encoding=values["encoding"],
                delimiter=values["delimiter"],
            )
        except services.DuplicateFile as duplicate:
            first = duplicate.first
            raise Problem(
                status_code=409,
                slug="duplicate-file",
                title=_("This file was registered before"),
                detail=_("Send force=true to load it again."),
                first={
                    "id": first.pk,
                    "name": first.name,
                    "created_at": first.created_at.isoformat(),
                    "status": first.status,
                    "admin_url": reverse("admin:recon_reconfile_change", args=[first.pk]),
                },
            ) from None
        if entry.status == FileStatus.REJECTED:
            raise Problem(
                status_code=422,
                slug="file-invalid",
                title=_("The file did not validate"),
                file=entry.pk,
                error_count=entry.error_count,
                errors=entry.errors,
            )
        body = {"file": _file_out(entry), "run": None}
        if values["run"]:
            body["run"] = _run_out(services.run(entry, actor=request.user))
        return Response(body, status=201)


class ReconRunDetailApi(APIView):
    permission_classes = [VerifiedSessionOrToken, capability("recon.view_reconrun")]

    @extend_schema(
        summary="One recon run: inputs, config version, counts, duration", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, run_id):
        recon_run = selectors.runs_for(request.user).select_related("config").filter(pk=run_id).first()
        if recon_run is None:
            raise Problem(status_code=404, slug="not-found", title=_("Not found"), detail=_("No such run."))
        return Response(_run_out(recon_run))
