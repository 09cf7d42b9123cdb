"""Evidence collected automatically for a period: each collector returns a JSON-able document with a one-line
`summary` and a `status` (ok / attention / not_available). Codes are what configs/compliance/*.yaml map to.

The summary is English in the JSON; `summary_i18n` keeps its message id and arguments, so each PDF says it in its
own language (`finding_text` in templatetags/compliance_labels.py, catalogue in locale/tr).
"""

import datetime as dt
import importlib.metadata
import io
import platform
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

EVIDENCE_CODES = (
    "mfa_coverage",
    "role_matrix",
    "admin_url_walk",
    "key_rotation_age",
    "audit_verification",
    "incident_lock_periods",
    "backup_settings",
    "dependency_versions",
    "check_deploy",
    "processing_records",
    "retention_runs",
)


def _finding(template: str, **args) -> dict:
    """`summary` (English) and `summary_i18n` (message id + arguments) for a collector's document."""
    with translation.override("en"):
        summary = translation.gettext(template) % args
    return {"summary": summary, "summary_i18n": {"text": template, "args": args}}


def _aware(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def mfa_coverage(period) -> dict:
    """Active staff users and whether each has a confirmed second factor, a TOTP device or a passkey, and which
    (ids only: no names leave the portal). Backup codes alone do not count: they only back up one of those."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    users = list(get_user_model().objects.filter(is_active=True, is_staff=True).values("pk", "is_superuser"))
    totp = set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    passkey = set(WebAuthnCredential.objects.filter(confirmed=True).values_list("user_id", flat=True))
    rows = [
        {
            "user_id": u["pk"],
            "superuser": u["is_superuser"],
            "mfa": u["pk"] in totp or u["pk"] in passkey,
            "methods": [m for m, holders in (("totp", totp), ("passkey", passkey)) if u["pk"] in holders],
        }
        for u in users
    ]
    covered = sum(r["mfa"] for r in rows)
    share = round(100 * covered / len(rows), 1) if rows else 100.0
    return {
        "status": "ok" if covered == len(rows) else "attention",
        **_finding(
            gettext_noop("%(covered)s of %(total)s active staff users have a confirmed second factor (%(share)s%%)"),
            covered=covered,
            total=len(rows),
            share=share,
        ),
        "coverage_percent": share,
        "users": rows,
    }


def role_matrix(period) -> dict:
    from django.contrib.auth.models import Group

    from apps.accounts.capabilities import ROLE_CAPABILITIES

    members = {g.name: g.user_set.count() for g in Group.objects.all()}
    roles = [{"role": r, "capabilities": sorted(c), "members": members.get(r, 0)} for r, c in ROLE_CAPABILITIES.items()]
    return {"status": "ok", **_finding(gettext_noop("%(roles)s roles, capabilities checked by name"), roles=len(roles)),
            "roles": roles}  # fmt: skip


def admin_url_walk(period) -> dict:
    """Every registered admin changelist asked for without signing in: none may answer 200."""
    from django.contrib import admin
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    host = next((h for h in settings.ALLOWED_HOSTS if h not in ("*",) and not h.startswith(".")), "localhost")
    client = Client(HTTP_HOST=host.strip("[]") if host.startswith("[") else host)
    results = []
    for model in admin.site._registry:
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        status = client.get(url).status_code
        results.append({"url": url, "status": status, "exposed": status == 200})
    exposed = [r for r in results if r["exposed"]]
    return {
        "status": "ok" if not exposed else "attention",
        **_finding(
            gettext_noop("%(asked)s admin URLs asked for anonymously; %(exposed)s answered without sign-in"),
            asked=len(results),
            exposed=len(exposed),
        ),
        "results": sorted(results, key=lambda r: r["url"]),
    }


def key_rotation_age(period) -> dict:
    from apps.erp.models import ErpKey, IntegrationProfile

    now = timezone.now()
    rows = []
    for profile in IntegrationProfile.objects.all().order_by("pk"):
        current = ErpKey.objects.filter(profile=profile, state="current").order_by("-created_at").first()
        since = (current.activated_at or current.created_at) if current else None
        rows.append(
            {
                "profile_id": profile.pk,
                "profile": profile.name,
                "tenant_id": profile.tenant_id,
                "current_key": current.fingerprint if current else None,
                "current_since": since.isoformat() if since else None,
                "age_days": (now - since).days if since else None,
                "next_key_staged": ErpKey.objects.filter(profile=profile, state="next").exists(),
            }
        )
    limit = settings.COMPLIANCE_KEY_MAX_AGE_DAYS
    old = [r for r in rows if r["age_days"] is not None and r["age_days"] > limit]
    return {
        "status": "ok" if not old else "attention",
        **_finding(
            gettext_noop("%(profiles)s ERP profiles; %(old)s with a current key older than %(limit)s days"),
            profiles=len(rows),
            old=len(old),
            limit=limit,
        ),
        "max_age_days": limit,
        "profiles": rows,
    }


def audit_verification(period) -> dict:
    """The whole audit chain verified now against the signing key, and the latest signed checkpoint."""
    from apps.audit import services as audit_services
    from apps.audit.db_verification import verify_database
    from apps.audit.models import AuditCheckpoint

    public_key = audit_services.signing_key().public_key()
    report = verify_database(public_key=public_key)
    checkpoint = AuditCheckpoint.objects.order_by("-tree_size").first()
    witness = audit_services.checkpoint_witness(checkpoint) if checkpoint else None
    finding = None
    if report.finding:
        finding = {"seq": getattr(report.finding, "seq", None), "problem": getattr(report.finding, "problem", "")}
    if report.ok:
        said = _finding(
            gettext_noop("chain verified: %(entries)s entries, %(checkpoints)s checkpoints")
            if checkpoint
            else gettext_noop(
                "chain verified: %(entries)s entries, %(checkpoints)s checkpoints; no signed checkpoint yet"
            ),
            entries=report.checked,
            checkpoints=report.checkpoints_checked,
        )
    else:
        said = _finding(
            gettext_noop("chain verification FAILED at entry %(seq)s: %(problem)s"),
            seq=(finding or {}).get("seq"),
            problem=(finding or {}).get("problem"),
        )
    return {
        "status": "ok" if report.ok and checkpoint else "attention",
        **said,
        "ok": report.ok,
        "entries_checked": report.checked,
        "checkpoints_checked": report.checkpoints_checked,
        "head_hash": report.head_hash,
        "finding": finding,
        "latest_checkpoint": witness,
    }


def incident_lock_periods(period) -> dict:
    """When the incident lock was on during the period, from the audit entries of its switches."""
    from apps.audit.models import AuditLog

    start, end = _aware(period.start), _aware(period.end)
    switches = list(
        AuditLog.objects.filter(action__in=["incident_lock.on", "incident_lock.off"], ts__lt=end)
        .order_by("ts", "id")
        .values("ts", "action")
    )
    spans, opened = [], None
    for s in switches:
        if s["action"] == "incident_lock.on" and opened is None:
            opened = s["ts"]
        elif s["action"] == "incident_lock.off" and opened is not None:
            if s["ts"] >= start:
                spans.append({"from": max(opened, start).isoformat(), "to": s["ts"].isoformat()})
            opened = None
    if opened is not None:
        spans.append({"from": max(opened, start).isoformat(), "to": None})
    return {
        "status": "ok",
        **_finding(
            gettext_noop("%(count)s incident-lock period(s) in %(period)s"), count=len(spans), period=period.label
        ),
        "periods": spans,
        "locked_from_boot": bool(getattr(settings, "INCIDENT_LOCK_FORCE", False)),
    }


def backup_settings(period) -> dict:
    db = settings.DATABASES["default"]
    declared = {
        "schedule": settings.COMPLIANCE_BACKUP_SCHEDULE,
        "retention_days": settings.COMPLIANCE_BACKUP_RETENTION_DAYS,
        "location": settings.COMPLIANCE_BACKUP_LOCATION,
    }
    missing = [k for k, v in declared.items() if not v]
    return {
        "status": "ok" if not missing else "attention",
        **(
            _finding(
                gettext_noop("backups declared: %(declared)s"),
                declared=", ".join(f"{k}={v}" for k, v in declared.items()),
            )
            if not missing
            else _finding(gettext_noop("backups not declared (%(missing)s)"), missing=", ".join(missing))
        ),
        "declared": declared,
        "database": {"engine": db["ENGINE"], "host": db.get("HOST") or "", "name": str(db.get("NAME"))},
        "audit_witness_file": settings.AUDIT_WITNESS_FILE,
    }


def _requirement_names() -> list[str]:
    text = (Path(settings.BASE_DIR) / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    return [
        re.split(r"[\[<>=!~ ;]", line.strip().strip('",'))[0]
        for line in block.splitlines()
        if line.strip().startswith('"')
    ]


def dependency_versions(period) -> dict:
    rows = []
    for name in _requirement_names():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = None
        rows.append({"package": name, "version": version})
    return {
        "status": "ok" if all(r["version"] for r in rows) else "attention",
        **_finding(
            gettext_noop("%(count)s runtime dependencies; Python %(python)s"),
            count=len(rows),
            python=platform.python_version(),
        ),
        "python": platform.python_version(),
        "packages": rows,
    }


def check_deploy(period) -> dict:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check", deploy=True, stdout=out, stderr=err)
        failed = False
    except SystemCheckError as exc:
        err.write(str(exc))
        failed = True
    text = (out.getvalue() + err.getvalue()).strip()
    issues = len(re.findall(r"^\?: |^[\w.]+: \(", text, flags=re.M))
    return {
        "status": "attention" if failed or issues else "ok",
        **(
            _finding(gettext_noop("check --deploy: errors"))
            if failed
            else _finding(gettext_noop("check --deploy: %(count)s warning(s)"), count=issues)
            if issues
            else _finding(gettext_noop("check --deploy: no issues"))
        ),
        "output": text,
    }


def processing_records(period) -> dict:
    """The declared Article 30 records (purposes cannot be read from a schema), each with what the governance
    data inventory says is stored: the personal and sensitive fields per table and their retention policy."""
    from apps.governance.selectors import inventory_with_retention

    from .content import PROCESSING_FIELDS
    from .models import ProcessingActivity

    rows = [{"name": a.name, **{k: getattr(a, k) for k in PROCESSING_FIELDS}} for a in ProcessingActivity.objects.all()]
    stored = []
    for entry in inventory_with_retention()["models"]:
        personal = sorted(f for f, c in entry["fields"].items() if c in ("PERSONAL", "SENSITIVE"))
        if personal:
            retention = entry["retention"]
            stored.append({
                "model": entry["model"], "personal_or_sensitive_fields": personal,
                "retention_class": retention["data_class"] if retention else None,
                "retention_days": retention["retention_days"] if retention else None,
            })  # fmt: skip
    return {
        "status": "ok" if rows else "attention",
        **_finding(
            gettext_noop(
                "%(records)s declared records of processing (GDPR Art. 30); the data inventory lists "
                "%(tables)s tables holding personal or sensitive fields"
            ),
            records=len(rows),
            tables=len(stored),
        ),
        "source": "purposes declared in configs/compliance/gdpr.yaml; stored data from the governance data inventory",
        "records": rows,
        "inventory": stored,
    }


def retention_runs(period) -> dict:
    """Retention runs in the period per data class (cutoff, deleted, archived, archive manifest), the policies in
    force and the standing legal holds: shows that data lived as long as policy said and no longer."""
    from apps.governance import registry
    from apps.governance.models import LegalHold, RetentionRun
    from apps.governance.selectors import policies, policy_json

    start, end = _aware(period.start), _aware(period.end)
    runs = [
        {"id": r.pk, "data_class": r.data_class, "state": r.state, "cutoff": r.cutoff.isoformat(),
         "deleted": r.deleted, "archived": r.archived, "manifest": r.manifest, "started_at": r.started_at.isoformat(),
         "finished_at": r.finished_at.isoformat() if r.finished_at else None}
        for r in RetentionRun.objects.filter(started_at__gte=start, started_at__lt=end).order_by("started_at", "pk")
    ]  # fmt: skip
    installed = [name for name in registry.CLASSES if registry.get(name).model() is not None]
    ran = {r["data_class"] for r in runs if r["state"] == "done"}
    not_run = sorted(set(installed) - ran)
    holds = [
        {"id": h.pk, "scope": h.scope, "tenant_id": h.tenant_id, "object_type": h.object_type,
         "placed_at": h.placed_at.isoformat()}
        for h in LegalHold.objects.filter(lifted_at__isnull=True).order_by("placed_at")
    ]  # fmt: skip
    return {
        "status": "ok" if not not_run else "attention",
        **_finding(
            gettext_noop(
                "%(runs)s retention runs in %(period)s, %(deleted)s rows deleted, %(archived)s archived; "
                "%(not_run)s data classes without a finished run; %(holds)s legal holds standing"
            ),
            runs=len(runs),
            period=period.label,
            deleted=sum(r["deleted"] for r in runs),
            archived=sum(r["archived"] for r in runs),
            not_run=len(not_run),
            holds=len(holds),
        ),
        "runs": runs,
        "classes_without_a_finished_run": not_run,
        "policies": [policy_json(p) for p in policies().values()],
        "legal_holds_standing": holds,
        "governance_enabled": settings.DATA_GOVERNANCE_ENABLED,
    }


COLLECTORS = {code: globals()[code] for code in EVIDENCE_CODES}
