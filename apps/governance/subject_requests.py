"""Data subject requests (GDPR articles 15-20): created with a due date, a dry run that lists every row
affected, and processing: an access/portability package, rectification, restriction, and erasure by
crypto-shredding (the audit log is never edited: the subject's audit key is destroyed). A subject under a
legal hold is refused erasure, rectification and restriction, with the hold named (docs/governance.md)."""

import hashlib
import io
import json
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import subject_keys
from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.core.spreadsheet_safety import FormulaSafeCSVWriter

from .models import DataSubjectRequest, RequestStatus, RequestType
from .services import standing_holds

DUE_DAYS = 30
BATCH = 2000
RECTIFIABLE = ("first_name", "last_name", "email")
# Requests that change or delete data: a legal hold on the subject refuses them.
CHANGING = (RequestType.ERASURE, RequestType.RECTIFICATION, RequestType.RESTRICTION)


class RequestError(ValueError):
    pass


def create_request(actor, *, request_type, subject_id, subject_email="", changes=None, now=None):
    """Record a request about the user `subject_id`; due 30 days from now. Audited (values encrypted)."""
    now = now or timezone.now()
    if not get_user_model().objects.filter(pk=subject_id).exists():
        raise RequestError("no such data subject")
    changes = changes or {}
    if request_type == RequestType.RECTIFICATION and (not changes or set(changes) - set(RECTIFIABLE)):
        raise RequestError(f"rectification changes only {', '.join(RECTIFIABLE)}")
    with transaction.atomic():
        req = DataSubjectRequest.objects.create(
            request_type=request_type, subject_id=str(subject_id), subject_email=subject_email, changes=changes,
            created_by=actor if getattr(actor, "pk", None) else None, created_at=now,
            due_at=now + timedelta(days=DUE_DAYS),
        )  # fmt: skip
        record(actor, "governance.data_request.created", req, {"request_type": request_type, "email": subject_email},
               subject=subject_id)  # fmt: skip
    return req


def _audit_rows(subject_id):
    user_label = get_user_model()._meta.label_lower
    # By them, about them, and about their requests (whose entries hold the e-mail they gave, under their key).
    requests = [str(pk) for pk in DataSubjectRequest.objects.filter(subject_id=subject_id).values_list("pk", flat=True)]
    return AuditLog.objects.filter(
        Q(actor_type="user", actor_id=subject_id)
        | Q(object_type=user_label, object_id=subject_id)
        | Q(object_type="governance.datasubjectrequest", object_id__in=requests)
    )


def _session_keys(subject_id):
    """Sessions of the subject, found by decoding each session in batches (their data is not queryable)."""
    keys = []
    for session in Session.objects.order_by("pk").iterator(chunk_size=BATCH):
        if str(session.get_decoded().get("_auth_user_id", "")) == subject_id:
            keys.append(session.pk)
    return keys


def _tables(subject_id):
    """(table, queryset) of every row about the subject that a request reaches."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from knox.models import AuthToken

    from apps.jobs.models import JobStatusChange
    from apps.reporting.models import ReportExport

    return [
        ("accounts.user", get_user_model().objects.filter(pk=subject_id)),
        ("audit.auditlog", _audit_rows(subject_id)),
        ("reporting.reportexport", ReportExport.objects.filter(requested_by_id=subject_id)),
        ("knox.authtoken", AuthToken.objects.filter(user_id=subject_id)),
        ("otp_totp.totpdevice", TOTPDevice.objects.filter(user_id=subject_id)),
        ("otp_static.staticdevice", StaticDevice.objects.filter(user_id=subject_id)),
        ("jobs.jobstatuschange", JobStatusChange.objects.filter(actor_id=subject_id)),
        ("sessions.session", Session.objects.filter(pk__in=_session_keys(subject_id))),
    ]


def affected_rows(subject_id) -> dict:
    """Every row the request reaches: {table: [primary keys]}, read in batches."""
    out = {}
    for table, qs in _tables(str(subject_id)):
        out[table] = [str(pk) if not isinstance(pk, int) else pk for pk in
                      qs.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=BATCH)]  # fmt: skip
    return out


def plaintext_audit_entries(subject_id) -> list[int]:
    """Ids of the subject's audit entries that hold personal values in plain text: written before crypto-shredding
    (or without a known subject). Erasure cannot reach them (the log is never edited); they leave with their
    segment by retention (docs/governance.md, "Existing entries")."""
    keys = subject_keys.personal_keys()
    return [pk for pk, payload in _audit_rows(str(subject_id)).order_by("pk").values_list("pk", "payload")
            .iterator(chunk_size=BATCH) if subject_keys.has_plaintext(payload, keys)]  # fmt: skip


# What erasure does to each table (docs/governance.md).
ERASURE_EFFECT = {
    "accounts.user": "anonymised: username becomes the pseudonym, names and e-mail emptied, no password, inactive",
    "audit.auditlog": "kept; personal values unreadable (the subject's audit key is destroyed)",
    "reporting.reportexport": "deleted with their files",
    "knox.authtoken": "deleted",
    "otp_totp.totpdevice": "deleted",
    "otp_static.staticdevice": "deleted",
    "jobs.jobstatuschange": "kept: names the anonymised user",
    "sessions.session": "deleted",
}


def _json_row(row):
    return json.loads(json.dumps(row, cls=DjangoJSONEncoder, default=str))


def _package_rows(table, qs):
    if table == "accounts.user":
        return [_json_row(r) for r in qs.values("id", "username", "first_name", "last_name", "email", "date_joined",
                                                   "last_login", "is_active")]  # fmt: skip
    if table == "audit.auditlog":
        cache = {}
        rows = []
        columns = ("seq", "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload",
                   "tenant_id", "client_ip")  # fmt: skip
        for row in qs.order_by("pk").values(*columns).iterator(chunk_size=BATCH):
            row["payload"] = subject_keys.reveal(row["payload"], cache=cache)
            rows.append(_json_row(row))
        return rows
    if table == "knox.authtoken":
        return [_json_row(r) for r in qs.values("token_key", "created", "expiry")]
    if table == "sessions.session":
        return [_json_row(r) for r in qs.values("expire_date")]
    if table in ("otp_totp.totpdevice", "otp_static.staticdevice"):
        return [_json_row(r) for r in qs.values("id", "name", "confirmed")]
    return [_json_row(r) for r in qs.values()]


def _csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = FormulaSafeCSVWriter(buffer)
    columns = sorted({k for row in rows for k in row})
    writer.writerow(columns)
    for row in rows:
        writer.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for v in
                         (row.get(c) for c in columns)])  # fmt: skip
    return buffer.getvalue().encode()


def write_package(req: DataSubjectRequest) -> dict:
    """The subject's data as one JSON document and a CSV per table (formula-safe), with a sha256 manifest."""
    storage = storages["exports"]
    base = f"governance/requests/{req.pk}"
    tables = {table: _package_rows(table, qs) for table, qs in _tables(req.subject_id)}
    document = {"format": "tezgah-data-subject-package", "version": 1, "request": req.pk,
                "subject_id": req.subject_id, "generated_at": timezone.now().isoformat(), "tables": tables}  # fmt: skip
    files = {"package.json": json.dumps(document, ensure_ascii=False, indent=2).encode()}
    files.update({f"{table}.csv": _csv(rows) for table, rows in tables.items()})
    manifest = []
    for name, data in files.items():
        saved = storage.save(f"{base}/{name}", ContentFile(data))
        manifest.append({"name": saved, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    saved = storage.save(f"{base}/manifest.json", ContentFile(json.dumps(manifest, indent=2).encode()))
    return {"manifest": saved, "files": manifest, "rows": {t: len(r) for t, r in tables.items()}}


def _erase(req: DataSubjectRequest) -> dict:
    from apps.reporting.models import ReportExport

    from .registry import delete_exports

    subject_id = req.subject_id
    counts = {"audit.auditlog": _audit_rows(subject_id).count()}
    plaintext = plaintext_audit_entries(subject_id)
    key = subject_keys.destroy(subject_id)
    tables = dict(_tables(subject_id))
    for table in ("reporting.reportexport", "knox.authtoken", "otp_totp.totpdevice", "otp_static.staticdevice",
                  "sessions.session"):  # fmt: skip
        qs, deleted = tables[table], 0
        while True:  # in batches: never one unbounded DELETE
            with transaction.atomic():
                pks = list(qs.order_by("pk").values_list("pk", flat=True)[:BATCH])
                if not pks:
                    break
                if table == "reporting.reportexport":
                    delete_exports(ReportExport, pks)
                else:
                    qs.model._default_manager.filter(pk__in=pks).delete()
                deleted += len(pks)
        counts[table] = deleted
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=subject_id)
        user.username, user.first_name, user.last_name, user.email = key.pseudonym, "", "", ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
    counts["accounts.user"] = 1
    return {"pseudonym": key.pseudonym, "counts": counts, "audit_plaintext": plaintext}


def process(req: DataSubjectRequest, actor, *, dry_run=False) -> dict:
    """Process (or with `dry_run`, only list what processing would reach); returns the result."""
    if req.status != RequestStatus.PENDING:
        raise RequestError(f"the request is {req.status} already")
    hold = standing_holds().on_subject(req.subject_id) if req.request_type in CHANGING else None
    if hold is not None:
        result = {"refused": "legal_hold", "hold": hold.pk, "hold_scope": hold.scope, "hold_reason": hold.reason}
        if not dry_run:
            _close(req, actor, RequestStatus.REFUSED, result)
        return {"dry_run": dry_run, **result}
    if dry_run:
        rows = affected_rows(req.subject_id)
        effect = ERASURE_EFFECT if req.request_type == RequestType.ERASURE else {}
        return {"dry_run": True, "request_type": req.request_type, "rows": rows,
                "audit_plaintext": plaintext_audit_entries(req.subject_id),
                "counts": {t: len(v) for t, v in rows.items()}, "effect": {t: effect.get(t) for t in rows}}  # fmt: skip
    if req.request_type in (RequestType.ACCESS, RequestType.PORTABILITY):
        result = write_package(req)
    elif req.request_type == RequestType.ERASURE:
        result = _erase(req)
    elif req.request_type == RequestType.RECTIFICATION:
        with transaction.atomic():
            user = get_user_model().objects.select_for_update().get(pk=req.subject_id)
            changed = {f: [getattr(user, f), v] for f, v in req.changes.items() if getattr(user, f) != v}
            for f, v in req.changes.items():
                setattr(user, f, v)
            user.save(update_fields=list(req.changes))
            record(actor, "governance.data_request.rectified", user, {"fields": changed})
        result = {"fields": sorted(changed)}
    else:  # restriction: the account stops being used; its data is kept
        get_user_model().objects.filter(pk=req.subject_id).update(is_active=False)
        result = {"restricted": True}
    _close(req, actor, RequestStatus.COMPLETED, result)
    return {"dry_run": False, **result}


def _close(req, actor, status, result):
    with transaction.atomic():
        req.status, req.processed_at, req.result = status, timezone.now(), result
        req.save(update_fields=["status", "processed_at", "result"])
        kept = {k: v for k, v in result.items() if k in ("hold", "refused", "pseudonym", "counts", "manifest")}
        record(actor, f"governance.data_request.{status}", req, {"request_type": req.request_type, **kept})
