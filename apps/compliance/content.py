"""Framework content as data: configs/compliance/<framework>.yaml -> Framework, Control, ControlEvidence,
ProcessingActivity rows. Re-loading brings the rows in line with the files (mappings replaced)."""

from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction

from .models import Control, ControlEvidence, Framework, FrameworkCode, ProcessingActivity

PROCESSING_FIELDS = ("purpose", "data_subjects", "data_categories", "recipients", "transfers", "retention", "security")


def content_dir() -> Path:
    return Path(settings.COMPLIANCE_CONTENT_DIR)


def load_framework(code: str, *, models=None) -> Framework:
    """Load one framework's file; `models` is a migration's app registry (default: the real models)."""
    get = (lambda name: models.get_model("compliance", name)) if models else None
    framework_model = get("Framework") if get else Framework
    control_model = get("Control") if get else Control
    mapping_model = get("ControlEvidence") if get else ControlEvidence
    activity_model = get("ProcessingActivity") if get else ProcessingActivity
    document = yaml.safe_load((content_dir() / f"{code}.yaml").read_text(encoding="utf-8"))
    head, default = document["framework"], document.get("default", {})
    with transaction.atomic():
        framework, _ = framework_model.objects.update_or_create(
            code=head["code"], defaults={"name": head["name"], "version": str(head["version"])}
        )
        seen = []
        for position, item in enumerate(document.get("controls", [])):
            applicable = item.get("applicable", default.get("applicable", True))
            control, _ = control_model.objects.update_or_create(
                framework=framework,
                ref=item["ref"],
                defaults={
                    "title": item["title"],
                    "category": item.get("category", ""),
                    "applicable": applicable,
                    "justification": item.get("justification", default.get("justification", "")),
                    "position": position,
                },
            )
            seen.append(control.pk)
            mapping_model.objects.filter(control=control).delete()
            mapping_model.objects.bulk_create(
                [mapping_model(control=control, evidence=code) for code in item.get("evidence", [])]
            )
        control_model.objects.filter(framework=framework).exclude(pk__in=seen).delete()
        for record in document.get("processing", []):
            activity_model.objects.update_or_create(
                name=record["name"], defaults={k: record.get(k, "") for k in PROCESSING_FIELDS}
            )
    return framework


def load_all(*, models=None) -> list:
    return [load_framework(code, models=models) for code in FrameworkCode.values]
