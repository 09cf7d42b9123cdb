"""Report exports: request one, write its file from a server-side cursor, and hand out signed download links."""

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from apps.audit.services import record
from apps.events.services import publish

from . import constants, copy_export, events, selectors
from .export_formats import FILE_EXTENSIONS, WRITERS
from .models import ExportFormat, ExportStatus, ReportExport
from .serializers import filters_to_json

logger = logging.getLogger(__name__)

LINK_SALT = "apps.reporting.export-link"
# Progress is written back every this many rows: often enough for a progress bar, rarely enough to be free.
PROGRESS_EVERY = 20_000


class ExportRefused(Exception):
    """The export cannot be made as asked (e.g. too many rows for XLSX); `message` says what to do instead."""

    def __init__(self, message, *, rows=None):
        super().__init__(message)
        self.message = message
        self.rows = rows


class LinkExpired(Exception):
    """The signed link is older than EXPORT_SIGNED_URL_TTL, or a single-use link was already used."""


class LinkInvalid(Exception):
    """The signed link was altered or was never issued by us."""


def request_export(user, *, format: str, filters: dict, single_use: bool = False) -> ReportExport:
    """Record an export of the report `filters` for `user` and queue the task that writes it.

    Refuses (ExportRefused) an XLSX export over Excel's row limit instead of cutting it short. A repeated
    request with the same Idempotency-Key never reaches here: core's idempotency middleware answers it.
    """
    as_of = selectors.snapshot_job_id()
    expected = selectors.report_jobs(user, filters).filter(id__lte=as_of).count()
    if format == ExportFormat.XLSX and expected > constants.XLSX_MAX_ROWS:
        from django.utils.translation import gettext as _

        raise ExportRefused(
            _(
                "These filters match %(rows)s rows; an Excel sheet holds at most %(limit)s. "
                "Export as CSV instead, or narrow the filters."
            )
            % {"rows": expected, "limit": constants.XLSX_MAX_ROWS},
            rows=expected,
        )
    from .tasks import write_report_export

    with transaction.atomic():
        export = request_export_record(
            user, format=format, filters=filters, single_use=single_use, as_of=as_of, expected=expected
        )
        transaction.on_commit(lambda: write_report_export.delay(str(export.id)))
    return export


def request_export_record(user, *, format, filters, single_use=False, as_of=None, expected=None) -> ReportExport:
    """Create the export row and its audit entry, without queueing the writer (request_export does that)."""
    as_of = selectors.snapshot_job_id() if as_of is None else as_of
    if expected is None:
        expected = selectors.report_jobs(user, filters).filter(id__lte=as_of).count()
    with transaction.atomic():
        export = ReportExport.objects.create(
            requested_by=user,
            format=format,
            filters=filters_to_json(filters),
            single_use=single_use,
            rows_expected=expected,
            snapshot_job_id=as_of,
            data_as_of=timezone.now(),
        )
        record(
            user,
            "reporting.export_requested",
            export,
            {"export_id": str(export.id), "format": format, "filters": export.filters, "rows_expected": expected},
        )
        # Through the outbox, so whoever counts exports (billing) sees every one, from the API or the panel, once.
        publish(
            events.REPORT_EXPORT_REQUESTED,
            version=1,
            aggregate_type="reporting.reportexport",
            aggregate_id=export.id,
            payload={
                "export_id": str(export.id),
                "format": format,
                "requested_by": getattr(user, "pk", None),
                "tenant_id": _export_tenant(user, export.filters),
                "rows_expected": expected,
                "requested_at": export.created_at,
            },
        )
    return export


def _export_tenant(user, filters: dict) -> int | None:
    """The single tenant an export is of: its tenant filter, else the requester's only tenant (None: several)."""
    from apps.accounts.selectors import tenants_for

    tenants = tenants_for(user)
    if filters.get("tenant"):
        tenants = tenants.filter(slug=filters["tenant"])
    ids = list(tenants.values_list("pk", flat=True)[:2])
    return ids[0] if len(ids) == 1 else None


def _filters_from_json(stored: dict) -> dict:
    from .serializers import ReportFilterSerializer

    parsed = ReportFilterSerializer(data=stored)
    parsed.is_valid(raise_exception=True)
    return parsed.validated_data


def write_export(export_id) -> ReportExport:
    """Write the export's file to storage (safe to run twice: a finished export is left alone)."""
    claimed = ReportExport.objects.filter(pk=export_id, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]).update(
        status=ExportStatus.RUNNING, rows_written=0
    )
    export = ReportExport.objects.select_related("requested_by").get(pk=export_id)
    if not claimed:
        return export
    meta = {
        "export_id": str(export.id),
        "format": export.format,
        "filters": export.filters,
        "time_zone": str(selectors.REPORT_TZ),
        "data_as_of": export.data_as_of.astimezone(selectors.REPORT_TZ).isoformat(),
        "snapshot_job_id": export.snapshot_job_id,
        "requested_by": export.requested_by.get_username(),
        "generator_version": constants.EXPORT_GENERATOR_VERSION,
    }

    def progress(n):
        if n % PROGRESS_EVERY == 0:
            ReportExport.objects.filter(pk=export.pk).update(rows_written=n)

    filters = _filters_from_json(export.filters)
    side_progress = None
    try:
        # Column headers and labels are Turkish whoever runs the worker.
        with translation.override("tr"), tempfile.TemporaryFile(dir=_tmp_dir()) as tmp:
            if copy_export.available() and export.format in copy_export.FORMATS:
                # PostgreSQL writes the finished lines (COPY); progress goes on a connection of its own.
                side_progress = copy_export.SideProgress(ReportExport._meta.db_table, export.pk)
                count = copy_export.write(
                    export.format,
                    export.requested_by,
                    filters,
                    as_of=export.snapshot_job_id,
                    out=tmp,
                    meta=meta,
                    progress=side_progress,
                )
            else:
                # A server-side cursor on PostgreSQL: rows arrive EXPORT_CHUNK_ROWS at a time, memory stays flat.
                rows = selectors.report_rows(export.requested_by, filters, as_of=export.snapshot_job_id)
                rows = rows.iterator(chunk_size=constants.EXPORT_CHUNK_ROWS)
                count = WRITERS[export.format](rows, tmp, meta, progress)
            size, digest = _size_and_sha256(tmp)
            stored_as = f"{export.created_at:%Y/%m}/{export.id}.{FILE_EXTENSIONS[export.format]}"
            name = storages["exports"].save(stored_as, File(tmp))
    except Exception as exc:
        if side_progress is not None:
            side_progress.close()
        logger.exception("Report export %s failed", export.pk)
        ReportExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    if side_progress is not None:
        side_progress.close()
    with transaction.atomic():
        ReportExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.DONE,
            rows_written=count,
            file_name=name,
            size_bytes=size,
            sha256=digest,
            finished_at=timezone.now(),
        )
        export.refresh_from_db()
        record(
            export.requested_by,
            "reporting.export_completed",
            export,
            {
                "export_id": str(export.id),
                "format": export.format,
                "filters": export.filters,
                "row_count": count,
                "sha256": digest,
                "size_bytes": size,
                "file": name,
            },
        )
    return export


def _tmp_dir() -> str:
    path = settings.VAR_DIR / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _size_and_sha256(fh) -> tuple[int, str]:
    fh.flush()
    fh.seek(0)
    digest = hashlib.file_digest(fh, "sha256").hexdigest()
    size = fh.tell()
    fh.seek(0)
    return size, digest


@dataclass
class DownloadLink:
    url: str
    expires_at: datetime


def download_link(export: ReportExport) -> DownloadLink | None:
    """A signed, expiring link to the finished export's file (None until it is done)."""
    if export.status != ExportStatus.DONE or (export.single_use and export.downloaded_at):
        return None
    # A nonce makes every link distinct, so a leaked old link says nothing about a new one.
    token = signing.TimestampSigner(salt=LINK_SALT).sign(f"{export.pk}:{os.urandom(6).hex()}")
    url = reverse("reports:export-download", kwargs={"export_id": export.pk}) + f"?token={token}"
    return DownloadLink(url=url, expires_at=timezone.now() + timedelta(seconds=settings.EXPORT_SIGNED_URL_TTL))


def open_download(export_id, token: str, *, downloader=None) -> ReportExport:
    """The export a signed link points at, counted as downloaded; LinkExpired (410) or LinkInvalid (403).

    `downloader` is who followed the link when the request says (a verified session or an API token), else
    None: the link is the credential, so the entry is then anonymous, with the client IP and the link's owner.
    """
    try:
        value = signing.TimestampSigner(salt=LINK_SALT).unsign(token or "", max_age=settings.EXPORT_SIGNED_URL_TTL)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    if value.split(":", 1)[0] != str(export_id):
        raise LinkInvalid
    with transaction.atomic():
        export = ReportExport.objects.select_for_update().filter(pk=export_id, status=ExportStatus.DONE).first()
        if export is None:
            raise LinkInvalid
        if export.single_use and export.downloaded_at:
            raise LinkExpired
        export.download_count += 1
        export.downloaded_at = export.downloaded_at or timezone.now()
        export.save(update_fields=["download_count", "downloaded_at"])
        record(
            downloader if downloader is not None else ("anonymous", ""),
            "reporting.export_downloaded",
            export,
            {
                "export_id": str(export.id),
                "sha256": export.sha256,
                "download": export.download_count,
                "requested_by": export.requested_by_id,
            },
        )
    return export
