"""Evidence packages: collect the evidence of a framework and period, write the summaries (Turkish and
English PDFs), the manifest (every file's sha256, the period, the generator version, the audit checkpoint
covered), sign the manifest with the audit signing key and zip it all."""

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from apps.audit import services as audit
from apps.audit import signatures
from apps.billing.pricing import Period, parse_period
from apps.core.spreadsheet_safety import FormulaSafeCSVWriter

from . import evidence
from .models import Control, EvidencePackage, Framework, PackageStatus
from .verify import MANIFEST, PUBLIC_KEY, SIGNATURE

GENERATOR = "tezgah-compliance"
GENERATOR_VERSION = "1.0"


def request_package(framework: str, period_label: str, *, actor=None) -> EvidencePackage:
    """A queued package row; the Celery task (tasks.build_package) fills it. ValueError on a bad period."""
    period = parse_period(period_label)
    if not Framework.objects.filter(code=framework).exists():
        raise ValueError(f"framework {framework!r} is not loaded (manage.py load_compliance_content)")
    with transaction.atomic():
        package = EvidencePackage.objects.create(
            framework=framework,
            period=period.label,
            period_start=period.start,
            period_end=period.end - dt.timedelta(days=1),
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record(actor, "compliance.package_requested", package, {"framework": framework, "period": period.label})
    return package


def _progress(package, percent, step):
    EvidencePackage.objects.filter(pk=package.pk).update(progress=percent, step=step[:100])


def _controls_csv(framework) -> bytes:
    out = io.StringIO()
    writer = FormulaSafeCSVWriter(out)
    writer.writerow(["ref", "title", "category", "applicable", "justification", "evidence"])
    for c in Control.objects.filter(framework=framework).prefetch_related("evidence"):
        codes = " ".join(sorted(e.evidence for e in c.evidence.all()))
        writer.writerow([c.ref, c.title, c.category, "yes" if c.applicable else "no", c.justification, codes])
    return out.getvalue().encode("utf-8")


def _records_csv(document) -> bytes:
    out = io.StringIO()
    writer = FormulaSafeCSVWriter(out, quoting=csv.QUOTE_MINIMAL)
    rows = document.get("records", [])
    keys = list(rows[0]) if rows else ["name"]
    writer.writerow(keys)
    for row in rows:
        writer.writerow([row[k] for k in keys])
    return out.getvalue().encode("utf-8")


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")


def _summary_pdf(language, context) -> bytes:
    from weasyprint import HTML

    with translation.override(language):
        html = render_to_string("compliance/summary.html", {**context, "language": language})
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def build_package(package_id) -> EvidencePackage:
    """Collect, summarise, sign and zip package `package_id`; progress on the row. Safe to run twice
    (a done package is left as it is)."""
    package = EvidencePackage.objects.get(pk=package_id)
    if package.status == PackageStatus.DONE:
        return package
    EvidencePackage.objects.filter(pk=package.pk).update(status=PackageStatus.RUNNING, progress=1, error="")
    try:
        return _build(package)
    except Exception as exc:
        EvidencePackage.objects.filter(pk=package.pk).update(status=PackageStatus.FAILED, error=str(exc)[:2000])
        raise


def _build(package) -> EvidencePackage:
    framework = Framework.objects.get(code=package.framework)
    period = Period(package.period, "period", package.period_start, package.period_end + dt.timedelta(days=1))
    wanted = sorted(
        set(Control.objects.filter(framework=framework, applicable=True).values_list("evidence__evidence", flat=True))
        - {None}
    )
    files, collected = {}, {}
    for i, code in enumerate(wanted):
        _progress(package, 5 + int(70 * i / max(1, len(wanted))), f"evidence: {code}")
        document = evidence.COLLECTORS[code](period)
        collected[code] = document
        files[f"evidence/{code}.json"] = _json({"evidence": code, "period": period.label, **document})
        if code == "processing_records":
            files["evidence/processing_records.csv"] = _records_csv(document)
    files["controls.csv"] = _controls_csv(framework)
    _progress(package, 80, "summaries")
    key = audit.signing_key()
    from apps.audit.models import AuditCheckpoint

    checkpoint = AuditCheckpoint.objects.order_by("-tree_size").first()
    witness = audit.checkpoint_witness(checkpoint) if checkpoint else None
    controls = list(Control.objects.filter(framework=framework).prefetch_related("evidence"))
    generated_at = timezone.now()
    context = {
        "framework": framework,
        "period": period,
        "period_last": package.period_end,
        "generated_at": generated_at,
        "checkpoint": witness,
        "evidence": [{"code": c, **collected[c]} for c in wanted],
        "controls": [
            {
                "ref": c.ref,
                "title": c.title,
                "applicable": c.applicable,
                "justification": c.justification,
                "evidence": sorted(e.evidence for e in c.evidence.all()),
            }
            for c in controls
        ],
        "generator": f"{GENERATOR} {GENERATOR_VERSION}",
        "key_id": signatures.key_id(key.public_key()),
    }
    files["summary-tr.pdf"] = _summary_pdf("tr", context)
    _progress(package, 88, "summaries")
    files["summary-en.pdf"] = _summary_pdf("en", context)
    _progress(package, 95, "manifest")
    manifest = {
        "generator": {"name": GENERATOR, "version": GENERATOR_VERSION},
        "framework": {"code": framework.code, "name": framework.name, "version": framework.version},
        "period": {"label": period.label, "start": period.start.isoformat(), "end": package.period_end.isoformat()},
        "generated_at": generated_at.isoformat(),
        "package_id": package.pk,
        "audit_checkpoint": witness,
        "signing_key_id": signatures.key_id(key.public_key()),
        "files": [
            {"name": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in sorted(files.items())
        ],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    signature = base64.b64encode(key.sign(manifest_bytes))
    directory = Path(settings.COMPLIANCE_PACKAGE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"evidence-{framework.code}-{period.label}-{package.pk}.zip"
    with zipfile.ZipFile(directory / name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in sorted(files.items()):
            archive.writestr(file_name, data)
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(SIGNATURE, signature + b"\n")
        archive.writestr(PUBLIC_KEY, signatures.public_pem(key.public_key()))
    digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    with transaction.atomic():
        EvidencePackage.objects.filter(pk=package.pk).update(
            status=PackageStatus.DONE,
            progress=100,
            step="done",
            file_name=name,
            sha256=digest,
            checkpoint_tree_size=witness["tree_size"] if witness else None,
            finished_at=timezone.now(),
        )
        audit.record(
            None,
            "compliance.package_built",
            package,
            {"file": name, "sha256": digest, "checkpoint": witness["tree_size"] if witness else None},
            object_type="compliance.evidencepackage",
        )
    package.refresh_from_db()
    return package


def package_path(package: EvidencePackage) -> Path:
    return Path(settings.COMPLIANCE_PACKAGE_DIR) / package.file_name
