"""Every recon write: config versions, file registration and loading, runs, and the breaks workflow.

Workflow calls check the actor's capability and tenant (PermissionDenied otherwise) and record an audit
entry in the transaction of the change.
"""

import copy
import difflib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.selectors import can_access_tenant
from apps.audit.services import record

from . import loading, matching
from .constants import DEFAULT_CONFIG, FIELDS
from .models import (
    Break,
    BreakComment,
    BreakKind,
    BreakState,
    DropSighting,
    FileSource,
    FileStatus,
    PortalRow,
    ReconConfig,
    ReconFile,
    ReconRun,
    RunStatus,
    StagedRow,
)

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ config versions


def current_config(profile) -> ReconConfig:
    """The profile's newest config version; a profile without one gets version 1 with the defaults."""
    latest = ReconConfig.objects.filter(profile=profile).order_by("-version").first()
    if latest is not None:
        return latest
    with transaction.atomic():
        try:
            with transaction.atomic():
                return ReconConfig.objects.create(
                    profile=profile, version=1, data=copy.deepcopy(DEFAULT_CONFIG), reason="default"
                )
        except IntegrityError:
            return ReconConfig.objects.get(profile=profile, version=1)


def _validate_config(data, base: dict | None = None) -> dict:
    """The config `data` on top of `base` (the previous version; else the defaults), validated."""
    if not isinstance(data, dict):
        raise ValidationError(_("The config is a JSON object."))
    unknown = set(data) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValidationError(_("Unknown config items: %(items)s") % {"items": ", ".join(sorted(unknown))})
    merged = {**copy.deepcopy(DEFAULT_CONFIG), **copy.deepcopy(base or {}), **data}
    key = merged["key"]
    if key.get("prefer") not in ("external_id", "composite"):
        raise ValidationError(_("key.prefer is external_id or composite."))
    if not set(key.get("composite") or []) <= {"machine", "model_type", "planned_start"} or not key.get("composite"):
        raise ValidationError(_("key.composite names machine, model_type and/or planned_start."))
    if not set((merged["columns"] or {}).values()) <= set(FIELDS):
        raise ValidationError(_("columns map headers to: %(fields)s") % {"fields": ", ".join(FIELDS)})
    for name, tol in (merged["tolerances"] or {}).items():
        if not isinstance(tol, dict) or any(not isinstance(v, int | float) or v < 0 for v in tol.values()):
            raise ValidationError(_("Tolerance %(name)s needs non-negative numbers.") % {"name": name})
    roots = [Path(r).resolve() for r in settings.ERP_DROP_DIRS]
    for folder in merged["drop_dirs"] or []:
        path = Path(folder).resolve()
        if not any(path == r or r in path.parents for r in roots):
            raise ValidationError(_("The drop folder %(folder)s is not under ERP_DROP_DIRS.") % {"folder": folder})
    return merged


def config_diff(old: dict | None, new: dict) -> str:
    """A unified diff of two config versions (sorted, indented JSON), as the admin shows it."""
    a = json.dumps(old or {}, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "before", "after", lineterm=""))


def save_config(profile, data: dict, *, author, reason: str) -> ReconConfig:
    """A new config version of `profile` (never an edit of an old one), audited with its diff.

    `data` replaces the named top-level items of the previous version; the others are carried over.
    """
    if not reason or not reason.strip():
        raise ValidationError(_("Say why the config changes."))
    with transaction.atomic():
        previous = current_config(profile)
        merged = _validate_config(data, previous.data)
        version = ReconConfig.objects.create(
            profile=profile, version=previous.version + 1, data=merged, author=author, reason=reason.strip()
        )
        record(
            author,
            "recon.config_changed",
            version,
            {
                "profile": profile.pk,
                "version": version.version,
                "reason": version.reason,
                "diff": config_diff(previous.data, merged),
            },
            tenant_id=profile.tenant_id,
        )
    return version


# ------------------------------------------------------------------ files


class DuplicateFile(Exception):
    """The same bytes were registered before; `first` is that file."""

    def __init__(self, first):
        super().__init__(f"duplicate of file #{first.pk}")
        self.first = first


class NoTenant(Exception):
    """The default profile (no tenant) cannot be reconciled: whose jobs would it compare with?"""


def _progress_key(file_id):
    return f"recon:progress:{file_id}"


def load_progress(file_id) -> int | None:
    """Rows loaded so far of a file still loading (for the admin), or None."""
    state = progress_of(file_id)
    return state["rows"] if state else None


def progress_of(file_id) -> dict | None:
    """Where a file's background load and run are: {"phase", "rows", "percent", "run"}, or None when idle.

    phase: "queued" (stored, waiting for a worker), "loading" (rows staged so far; percent of the file's
    bytes read), "matching" (the run is comparing and writing breaks), "done" or "failed" (for a while).
    """
    state = cache.get(_progress_key(file_id))
    if isinstance(state, int):  # written by an older worker during a deploy
        return {"phase": "loading", "rows": state, "percent": None, "run": None}
    return state


def _set_progress(file_id, phase, *, rows=0, percent=None, run=None, timeout=3600):
    cache.set(_progress_key(file_id), {"phase": phase, "rows": rows, "percent": percent, "run": run}, timeout)


def register(stream, *, name, profile, source, actor=None, force=False) -> ReconFile:
    """Put the file in the registry by its sha256 (status `loading`); nothing is read but its bytes' hash.

    Raises DuplicateFile (unless `force`) when these bytes were registered before, NoTenant for the
    default profile.
    """
    if profile.tenant_id is None:
        raise NoTenant
    sha256, size = loading.sha256_of(stream)
    first = ReconFile.objects.filter(sha256=sha256, duplicate_of__isnull=True).first()
    if first is not None and not force:
        raise DuplicateFile(first)
    try:
        with transaction.atomic():
            return ReconFile.objects.create(
                tenant_id=profile.tenant_id,
                profile=profile,
                name=name[:255],
                sha256=sha256,
                size=size,
                source=source,
                duplicate_of=first,
                uploaded_by=actor if getattr(actor, "pk", None) else None,
                file_format="",
            )
    except IntegrityError:
        # A concurrent upload of the same bytes registered first.
        raise DuplicateFile(ReconFile.objects.get(sha256=sha256, duplicate_of__isnull=True)) from None


def register_file(
    stream, *, name, profile, source, actor=None, force=False, encoding="", delimiter="", config=None, on_progress=None
) -> ReconFile:
    """Register the file by sha256 and stage its rows; a rejected file keeps its errors and stages nothing.

    Raises DuplicateFile (unless `force`) when these bytes were registered before.
    """
    entry = register(stream, name=name, profile=profile, source=source, actor=actor, force=force)
    return load_file(
        entry, stream, actor=actor, encoding=encoding, delimiter=delimiter, config=config, on_progress=on_progress
    )


def load_file(entry: ReconFile, stream, *, actor=None, encoding="", delimiter="", config=None, on_progress=None):
    """Validate and stage a registered file's rows in one transaction; the entry ends `loaded` or `rejected`."""
    config = config or current_config(entry.profile)
    stream.seek(0)

    def progress(rows):
        # The share of the file's bytes read so far: the row count is not known before the end.
        percent = min(99, int(stream.tell() * 100 / entry.size)) if entry.size else None
        _set_progress(entry.pk, "loading", rows=rows, percent=percent)
        if on_progress:
            on_progress(rows)

    started = time.monotonic()
    try:
        with transaction.atomic():
            outcome = loading.load(
                stream,
                file_id=entry.pk,
                name=entry.name,
                config=config.data,
                encoding=encoding,
                delimiter=delimiter,
                on_progress=progress,
            )
            status = FileStatus.LOADED
    except loading.FileRejected as rejected:
        outcome, status = rejected.outcome, FileStatus.REJECTED
    cache.delete(_progress_key(entry.pk))
    for field in (
        "file_format",
        "encoding",
        "delimiter",
        "errors",
        "error_count",
        "formula_cells",
        "formula_count",
        "columns",
    ):
        setattr(entry, field, getattr(outcome, field))
    entry.row_count = outcome.rows if status == FileStatus.LOADED else 0
    entry.status = status
    entry.load_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        entry.save()
        record(
            actor if getattr(actor, "pk", None) else None,
            "recon.file_loaded" if status == FileStatus.LOADED else "recon.file_rejected",
            entry,
            {
                "name": entry.name,
                "sha256": entry.sha256,
                "rows": entry.row_count,
                "errors": entry.error_count,
                "forced_duplicate_of": entry.duplicate_of_id,
                "source": entry.source,
            },
        )
    return entry


# ------------------------------------------------------------------ background uploads (the admin)


def _upload_storage():
    from django.core.files.storage import storages

    return storages["recon_uploads"]


def queue_upload(upload, *, profile, actor, force=False, encoding="", delimiter="", run_after=False) -> ReconFile:
    """Register an uploaded file, keep its bytes in the `recon_uploads` storage and load it on a worker.

    Returns at once with the registry entry (`loading`); `tasks.load_uploaded_file` stages it, runs it
    when asked, reports progress (`progress_of`) and deletes the kept bytes. Raises DuplicateFile/NoTenant.
    """
    entry = register(upload, name=upload.name, profile=profile, source=FileSource.ADMIN, actor=actor, force=force)
    upload.seek(0)
    stored = _upload_storage().save(f"{entry.pk}-{entry.sha256}.upload", upload)
    _set_progress(entry.pk, "queued")
    from .tasks import load_uploaded_file

    options = {"encoding": encoding, "delimiter": delimiter, "run": bool(run_after)}
    actor_id = getattr(actor, "pk", None)
    transaction.on_commit(lambda: load_uploaded_file.delay(entry.pk, stored, actor_id, options))
    return entry


def load_uploaded(file_id: int, stored: str, actor_id, options: dict) -> ReconFile | None:
    """The worker's half of `queue_upload`: load the kept bytes, run if asked, forget the bytes.

    Safe to run twice (acks_late redelivery): a file no longer `loading` is left as it is.
    """
    from django.contrib.auth import get_user_model

    entry = ReconFile.objects.select_related("profile").filter(pk=file_id).first()
    storage = _upload_storage()
    if entry is None or entry.status != FileStatus.LOADING:
        if storage.exists(stored):
            storage.delete(stored)
        return entry
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        with storage.open(stored, "rb") as stream:
            entry = load_file(
                entry, stream, actor=actor, encoding=options.get("encoding", ""), delimiter=options.get("delimiter", "")
            )
        recon_run = None
        if entry.status == FileStatus.LOADED and options.get("run") and actor and actor.has_perm("recon.run_recon"):
            _set_progress(entry.pk, "matching", rows=entry.row_count, percent=99)
            recon_run = run(entry, actor=actor)
        _set_progress(entry.pk, "done", rows=entry.row_count, percent=100, run=recon_run and recon_run.pk, timeout=600)
    except Exception:
        _set_progress(entry.pk, "failed", timeout=600)
        if ReconFile.objects.filter(pk=entry.pk, status=FileStatus.LOADING).exists():
            ReconFile.objects.filter(pk=entry.pk).update(
                status=FileStatus.REJECTED,
                error_count=1,
                errors=[{"row": 0, "column": "-", "header": "", "message": _("The worker could not load the file.")}],
            )
        raise
    finally:
        if storage.exists(stored):
            storage.delete(stored)
    return entry


# ------------------------------------------------------------------ runs


def run(
    file: ReconFile,
    *,
    actor=None,
    config: ReconConfig | None = None,
    snapshot_of: ReconRun | None = None,
    write_breaks=True,
) -> ReconRun:
    """Compare a loaded file with the portal's jobs (or with an earlier run's snapshot of them).

    Writes the run, and unless `write_breaks` is False, creates, updates, reopens and auto-clears breaks.
    """
    if file.status != FileStatus.LOADED:
        raise ValidationError(_("Only a loaded file can be reconciled."))
    config = config or current_config(file.profile)
    if config.profile_id != file.profile_id:
        raise ValidationError(_("The config belongs to another profile."))
    started = time.monotonic()
    with transaction.atomic():
        recon_run = ReconRun.objects.create(
            tenant_id=file.tenant_id,
            profile_id=file.profile_id,
            config=config,
            file=file,
            input_hashes=[file.sha256],
            snapshot_of=snapshot_of,
            writes_breaks=write_breaks,
            started_by=actor if getattr(actor, "pk", None) else None,
        )
        if snapshot_of is None:
            matching.snapshot_portal(recon_run, config.data)
        counts = {kind: 0 for kind in BreakKind.values}
        if connection.vendor == "postgresql":
            found_counts, digest, cleared = _compare_and_write_in_database(
                recon_run, config.data, file.columns, write_breaks=write_breaks
            )
            counts.update(found_counts)
        else:
            found = matching.compare(recon_run, config.data, columns=file.columns)
            for item in found:
                counts[item["kind"]] += 1
            cleared = _write_breaks(recon_run, found) if write_breaks else 0
            digest = matching.result_digest(found)
        recon_run.counts = counts
        recon_run.cleared_count = cleared
        recon_run.result_sha256 = digest
        recon_run.status = RunStatus.DONE
        recon_run.finished_at = timezone.now()
        recon_run.duration_ms = int((time.monotonic() - started) * 1000)
        recon_run.save()
        record(
            actor if getattr(actor, "pk", None) else None,
            "recon.run_finished",
            recon_run,
            {
                "file": file.pk,
                "sha256": file.sha256,
                "config_version": config.version,
                "counts": counts,
                "cleared": cleared,
                "writes_breaks": write_breaks,
            },
        )
    return recon_run


def rerun(previous: ReconRun, *, actor=None, config: ReconConfig | None = None, write_breaks=False) -> ReconRun:
    """Run `previous`'s file again against the portal as `previous` saw it, with `config` (default: its own)."""
    snapshot = previous.snapshot_of or previous
    return run(
        previous.file, actor=actor, config=config or previous.config, snapshot_of=snapshot, write_breaks=write_breaks
    )


def _compare_and_write_in_database(recon_run: ReconRun, config: dict, columns, *, write_breaks: bool):
    """PostgreSQL: compare, count, digest and upsert the breaks in one statement; then auto-clear in one UPDATE.

    The breaks never come to Python: `matching.found_sql` yields them as rows, an INSERT ... ON CONFLICT
    (profile, fingerprint) DO UPDATE writes new ones and refreshes (and, if closed, reopens) the ones seen
    before. Returns (counts per kind, result digest, auto-cleared count).
    """
    found, params = matching.found_sql(recon_run, config, columns=columns)
    now = timezone.now()
    closed = [BreakState.RESOLVED, BreakState.CLEARED]
    upsert = ""
    upsert_params: list = []
    if write_breaks:
        # Fixed column names only; every value is a %s parameter.
        upsert = """, written AS (
            INSERT INTO recon_breaks AS b (tenant_id, profile_id, fingerprint, kind, key, job_id, external_id, details,
                                           state, reason, first_seen_at, last_seen_at, first_run_id, last_run_id,
                                           updated_at)
            SELECT %s, %s, fingerprint, kind, left(key, 300), job_id, left(external_id, 64), details,
                   %s, '', %s, %s, %s, %s, %s
            FROM found
            ON CONFLICT (profile_id, fingerprint) DO UPDATE SET
                details = EXCLUDED.details,
                job_id = EXCLUDED.job_id,
                last_seen_at = EXCLUDED.last_seen_at,
                last_run_id = EXCLUDED.last_run_id,
                state = CASE WHEN b.state IN (%s, %s) THEN %s ELSE b.state END,
                reason = CASE WHEN b.state IN (%s, %s) THEN %s ELSE b.reason END,
                closed_at = CASE WHEN b.state IN (%s, %s) THEN NULL ELSE b.closed_at END,
                suppressed_until = CASE WHEN b.state IN (%s, %s) THEN NULL ELSE b.suppressed_until END,
                updated_at = CASE WHEN b.state IN (%s, %s) OR b.details <> EXCLUDED.details
                                  THEN EXCLUDED.updated_at ELSE b.updated_at END
            RETURNING 1
        )"""
        reopened = _("Seen again in run #%(run)s.") % {"run": recon_run.pk}
        upsert_params = [
            recon_run.tenant_id,
            recon_run.profile_id,
            BreakState.OPEN,
            now,
            now,
            recon_run.pk,
            recon_run.pk,
            now,
            *closed,
            BreakState.OPEN,
            *closed,
            reopened,
            *closed,
            *closed,
            *closed,
        ]
    written = "(SELECT count(*) FROM written)" if write_breaks else "0"
    # `found` is read three times: MATERIALIZED computes the join once. The digest is over the sorted
    # lines "fingerprint|kind|details", so a re-run with the same inputs and config gives the same one.
    sql = f"""
        WITH found AS MATERIALIZED ({found})
        {upsert}
        SELECT (SELECT COALESCE(jsonb_object_agg(kind, n), '{{}}'::jsonb)
                FROM (SELECT kind, count(*) AS n FROM found GROUP BY kind) per_kind),
               (SELECT encode(sha256(convert_to(COALESCE(string_agg(line, E'\\n' ORDER BY line COLLATE "C"), ''),
                                                'UTF8')), 'hex')
                FROM (SELECT fingerprint || '|' || kind || '|' || details::text AS line FROM found) lines),
               {written}
    """  # noqa: S608
    with connection.cursor() as cursor:
        matching.set_work_mem(cursor)
        cursor.execute(sql, [*params, *upsert_params])
        counts, digest, _written = cursor.fetchone()
    cleared = 0
    if write_breaks:
        cleared = _clear_the_gone(recon_run, now)
    return (json.loads(counts) if isinstance(counts, str) else counts), digest, cleared


def _clear_the_gone(recon_run: ReconRun, now) -> int:
    """Every break found in this run now names it; an open or suppressed one that does not is gone."""
    return (
        Break.objects.filter(profile_id=recon_run.profile_id, state__in=[BreakState.OPEN, BreakState.SUPPRESSED])
        .exclude(last_run=recon_run)
        .update(
            state=BreakState.CLEARED,
            reason=_("The difference is gone in run #%(run)s.") % {"run": recon_run.pk},
            closed_at=now,
            suppressed_until=None,
        )
    )


def _write_breaks(recon_run: ReconRun, found: list[dict]) -> int:
    """Upsert the found breaks by fingerprint; open ones not found again clear themselves. Returns cleared."""
    now = timezone.now()
    existing = {
        fp: (pk, state, details)
        for fp, pk, state, details in Break.objects.filter(profile_id=recon_run.profile_id).values_list(
            "fingerprint", "pk", "state", "details"
        )
    }
    new, changed, seen, reopened = [], [], [], []
    for item in found:
        current = existing.get(item["fingerprint"])
        if current is None:
            new.append(
                Break(
                    tenant_id=recon_run.tenant_id,
                    profile_id=recon_run.profile_id,
                    fingerprint=item["fingerprint"],
                    kind=item["kind"],
                    key=item["key"][:300],
                    job_id=item["job_id"],
                    external_id=(item["external_id"] or "")[:64],
                    details=item["details"],
                    first_seen_at=now,
                    last_seen_at=now,
                    first_run=recon_run,
                    last_run=recon_run,
                )
            )
            continue
        pk, state, details = current
        if state in (BreakState.RESOLVED, BreakState.CLEARED):
            reopened.append(pk)
        if details != json.loads(json.dumps(item["details"], default=str)):
            changed.append(Break(pk=pk, details=item["details"], job_id=item["job_id"]))
        seen.append(pk)
    _insert_breaks(new)
    Break.objects.bulk_update(changed, ["details", "job_id"], batch_size=2000)
    for start in range(0, len(seen), 5000):
        Break.objects.filter(pk__in=seen[start : start + 5000]).update(last_seen_at=now, last_run=recon_run)
    for start in range(0, len(reopened), 5000):
        Break.objects.filter(pk__in=reopened[start : start + 5000]).update(
            state=BreakState.OPEN,
            reason=_("Seen again in run #%(run)s.") % {"run": recon_run.pk},
            closed_at=None,
            suppressed_until=None,
        )
    return _clear_the_gone(recon_run, now)


_BREAK_COLUMNS = (
    "tenant_id",
    "profile_id",
    "fingerprint",
    "kind",
    "key",
    "job_id",
    "external_id",
    "details",
    "state",
    "reason",
    "first_seen_at",
    "last_seen_at",
    "first_run_id",
    "last_run_id",
    "updated_at",
)


def _insert_breaks(new: list[Break]) -> None:
    """New breaks by COPY on PostgreSQL (bulk_create spent seconds building SQL for thousands), else bulk_create."""
    if connection.vendor != "postgresql" or not new:
        Break.objects.bulk_create(new, batch_size=2000)
        return
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY recon_breaks ({', '.join(_BREAK_COLUMNS)}) FROM STDIN") as copy,
    ):
        for b in new:
            copy.write_row(
                (
                    b.tenant_id,
                    b.profile_id,
                    b.fingerprint,
                    b.kind,
                    b.key,
                    b.job_id,
                    b.external_id,
                    json.dumps(b.details, default=str),
                    b.state,
                    b.reason,
                    b.first_seen_at,
                    b.last_seen_at,
                    b.first_run_id,
                    b.last_run_id,
                    b.first_seen_at,
                )
            )


def purge_staging(recon_file: ReconFile) -> int:
    """Delete a file's staged rows (retention); its runs keep their counts but can no longer be re-run."""
    return StagedRow.objects.filter(file=recon_file).delete()[0]


def purge_snapshot(recon_run: ReconRun) -> int:
    return PortalRow.objects.filter(run=recon_run).delete()[0]


# ------------------------------------------------------------------ breaks workflow


def _require(actor, capability: str, brk: Break) -> None:
    if not (actor and actor.is_authenticated and actor.has_perm(capability)):
        raise PermissionDenied(_("You need the %(capability)s capability.") % {"capability": capability})
    if not can_access_tenant(actor, brk.tenant):
        raise PermissionDenied(_("This break belongs to a tenant you do not work on."))


def _audit(actor, action, brk, **payload):
    record(actor, action, brk, {"kind": brk.kind, "key": brk.key, "state": brk.state, **payload})


def assign(brk: Break, *, assignee, actor) -> Break:
    """Give the break to `assignee` (None: unassign); the assignee must be able to work the tenant's breaks."""
    _require(actor, "recon.assign_break", brk)
    if assignee is not None and not (
        assignee.is_active and assignee.has_perm("recon.resolve_break") and can_access_tenant(assignee, brk.tenant)
    ):
        raise ValidationError(_("%(user)s cannot work this break.") % {"user": assignee.get_username()})
    with transaction.atomic():
        brk.assignee = assignee
        brk.save(update_fields=["assignee", "updated_at"])
        _audit(actor, "recon.break_assigned", brk, assignee=assignee.pk if assignee else None)
    return brk


def bulk_assign(breaks, *, assignee, actor) -> int:
    """Assign every break in `breaks` (each checked like `assign`); returns how many."""
    count = 0
    with transaction.atomic():
        for brk in breaks.select_related("tenant"):
            assign(brk, assignee=assignee, actor=actor)
            count += 1
    return count


def comment(brk: Break, text: str, *, actor) -> BreakComment:
    _require(actor, "recon.comment_break", brk)
    if not text.strip():
        raise ValidationError(_("A comment needs text."))
    with transaction.atomic():
        note = BreakComment.objects.create(brk=brk, author=actor, text=text.strip())
        _audit(actor, "recon.break_commented", brk, comment=note.pk)
    return note


def _need_reason(reason):
    if not reason or not reason.strip():
        raise ValidationError(_("Give a reason."))
    return reason.strip()[:500]


def resolve(brk: Break, *, reason: str, actor) -> Break:
    _require(actor, "recon.resolve_break", brk)
    reason = _need_reason(reason)
    if brk.is_closed:
        raise ValidationError(_("The break is closed already."))
    with transaction.atomic():
        brk.state, brk.reason, brk.closed_at, brk.suppressed_until = BreakState.RESOLVED, reason, timezone.now(), None
        brk.save(update_fields=["state", "reason", "closed_at", "suppressed_until", "updated_at"])
        _audit(actor, "recon.break_resolved", brk, reason=reason)
    return brk


def reopen(brk: Break, *, reason: str, actor=None) -> Break:
    """Open a closed or suppressed break again; `actor=None` is the system (an expired suppression)."""
    if actor is not None:
        _require(actor, "recon.resolve_break", brk)
    reason = _need_reason(reason)
    if brk.state == BreakState.OPEN:
        raise ValidationError(_("The break is open already."))
    with transaction.atomic():
        brk.state, brk.reason, brk.closed_at, brk.suppressed_until = BreakState.OPEN, reason, None, None
        brk.save(update_fields=["state", "reason", "closed_at", "suppressed_until", "updated_at"])
        _audit(actor, "recon.break_reopened", brk, reason=reason)
    return brk


def suppress(brk: Break, *, reason: str, until, actor) -> Break:
    """Hide the break from the queue until `until`; beat reopens it then unless the difference is gone."""
    _require(actor, "recon.suppress_break", brk)
    reason = _need_reason(reason)
    if until is None or until <= timezone.now():
        raise ValidationError(_("A suppression needs an expiry in the future."))
    if brk.is_closed:
        raise ValidationError(_("The break is closed already."))
    with transaction.atomic():
        brk.state, brk.reason, brk.suppressed_until = BreakState.SUPPRESSED, reason, until
        brk.save(update_fields=["state", "reason", "suppressed_until", "updated_at"])
        _audit(actor, "recon.break_suppressed", brk, reason=reason, until=until.isoformat())
    return brk


def unsuppress(brk: Break, *, actor) -> Break:
    _require(actor, "recon.suppress_break", brk)
    if brk.state != BreakState.SUPPRESSED:
        raise ValidationError(_("The break is not suppressed."))
    with transaction.atomic():
        brk.state, brk.reason, brk.suppressed_until = BreakState.OPEN, "", None
        brk.save(update_fields=["state", "reason", "suppressed_until", "updated_at"])
        _audit(actor, "recon.break_unsuppressed", brk)
    return brk


def expire_suppressions(*, now=None) -> int:
    """Reopen every break whose suppression ran out (beat, every few minutes). Safe to run twice."""
    now = now or timezone.now()
    count = 0
    for pk in Break.objects.filter(state=BreakState.SUPPRESSED, suppressed_until__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            brk = Break.objects.select_for_update().filter(pk=pk, state=BreakState.SUPPRESSED).first()
            if brk is None:
                continue
            reopen(brk, reason=_("The suppression expired."), actor=None)
            count += 1
    return count


# ------------------------------------------------------------------ drop folders


@dataclass
class DropResult:
    picked: int = 0
    waiting: int = 0
    refused: int = 0


def _drop_folders():
    from apps.erp.models import IntegrationProfile

    for profile in IntegrationProfile.objects.filter(tenant__isnull=False, enabled=True):
        config = ReconConfig.objects.filter(profile=profile).order_by("-version").first()
        for folder in (config.data.get("drop_dirs") or []) if config else []:
            yield profile, config, Path(folder)


def _under_roots(path: Path) -> bool:
    roots = [Path(r).resolve() for r in settings.ERP_DROP_DIRS]
    path = path.resolve()
    return any(path == r or r in path.parents for r in roots)


def poll_drop_folders() -> DropResult:
    """Pick up files that hold still (same size and mtime as the last poll) or have a `<name>.done` marker.

    A picked file is registered, reconciled and moved to `processed/` (or `rejected/`) inside its folder.
    """
    result = DropResult()
    for profile, config, folder in _drop_folders():
        if not _under_roots(folder) or not folder.is_dir():
            logger.warning("recon drop folder %s is not under ERP_DROP_DIRS or missing", folder)
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in (".csv", ".xlsx", ".txt"):
                continue
            stat = path.stat()
            marker = path.with_name(path.name + ".done")
            if not marker.exists():
                sighting = DropSighting.objects.filter(path=str(path)).first()
                if sighting is None or (sighting.size, sighting.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
                    DropSighting.objects.update_or_create(
                        path=str(path),
                        defaults={"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "seen_at": timezone.now()},
                    )
                    result.waiting += 1
                    continue
            _pick(path, marker, profile, config, result)
    return result


def _pick(path: Path, marker: Path, profile, config, result: DropResult) -> None:
    target = "processed"
    try:
        with path.open("rb") as stream:
            entry = register_file(stream, name=path.name, profile=profile, source=FileSource.DROP, config=config)
        if entry.status == FileStatus.LOADED:
            run(entry, config=config)
            result.picked += 1
        else:
            target = "rejected"
            result.refused += 1
    except DuplicateFile:
        target = "rejected"
        result.refused += 1
    done = path.parent / target
    done.mkdir(exist_ok=True)
    shutil.move(str(path), str(done / path.name))
    if marker.exists():
        os.unlink(marker)
    DropSighting.objects.filter(path=str(path)).delete()
