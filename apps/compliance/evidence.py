"""Evidence collected automatically for a period: each collector returns a JSON-able document with a one-line
`summary` and a `status` (ok / attention / not_available). Codes are what configs/compliance/*.yaml map to."""

import datetime as dt
import importlib.metadata
import io
import platform
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone

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
)


def _aware(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def mfa_coverage(period) -> dict:
    """Active staff users and whether each has a confirmed TOTP device (ids only: no names leave the portal)."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    users = list(get_user_model().objects.filter(is_active=True, is_staff=True).values("pk", "is_superuser"))
    enrolled = set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    rows = [{"user_id": u["pk"], "superuser": u["is_superuser"], "mfa": u["pk"] in enrolled} for u in users]
    covered = sum(r["mfa"] for r in rows)
    share = round(100 * covered / len(rows), 1) if rows else 100.0
    return {
        "status": "ok" if covered == len(rows) else "attention",
        "summary": f"{covered} of {len(rows)} active staff users have a confirmed second factor ({share}%)",
        "coverage_percent": share,
        "users": rows,
    }


def role_matrix(period) -> dict:
    from django.contrib.auth.models import Group

    from apps.accounts.capabilities import ROLE_CAPABILITIES

    members = {g.name: g.user_set.count() for g in Group.objects.all()}
    roles = [{"role": r, "capabilities": sorted(c), "members": members.get(r, 0)} for r, c in ROLE_CAPABILITIES.items()]
    return {"status": "ok", "summary": f"{len(roles)} roles, capabilities checked by name", "roles": roles}


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
        "summary": f"{len(results)} admin URLs asked for anonymously; {len(exposed)} answered without sign-in",
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
        "summary": f"{len(rows)} ERP profiles; {len(old)} with a current key older than {limit} days",
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
    return {
        "status": "ok" if report.ok and checkpoint else "attention",
        "summary": (
            f"chain verified: {report.checked} entries, {report.checkpoints_checked} checkpoints"
            if report.ok
            else f"chain verification FAILED: {finding}"
        )
        + ("" if checkpoint else "; no signed checkpoint yet"),
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
        "summary": f"{len(spans)} incident-lock period(s) in {period.label}",
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
        "summary": "backups declared: "
        + (
            ", ".join(f"{k}={v}" for k, v in declared.items())
            if not missing
            else "not declared (" + ", ".join(missing) + ")"
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
        "summary": f"{len(rows)} runtime dependencies; Python {platform.python_version()}",
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
        "summary": "check --deploy: " + ("errors" if failed else f"{issues} warning(s)" if issues else "no issues"),
        "output": text,
    }


def processing_records(period) -> dict:
    from .content import PROCESSING_FIELDS
    from .models import ProcessingActivity

    rows = [{"name": a.name, **{k: getattr(a, k) for k in PROCESSING_FIELDS}} for a in ProcessingActivity.objects.all()]
    return {
        "status": "ok" if rows else "attention",
        "summary": f"{len(rows)} declared records of processing (GDPR Art. 30)",
        "source": "declared list (configs/compliance/gdpr.yaml); the governance data inventory is not built yet",
        "records": rows,
    }


COLLECTORS = {code: globals()[code] for code in EVIDENCE_CODES}
