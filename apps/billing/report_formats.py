"""A cost report (selectors.cost_report) as JSON, CSV (formula-safe) and PDF (WeasyPrint)."""

import io
import json
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils import translation

from apps.core.spreadsheet_safety import FormulaSafeCSVWriter

from .models import UsageMetric


def _plain(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def as_json(report: dict) -> str:
    return json.dumps(report, default=_plain, ensure_ascii=False, indent=2)


def as_csv(report: dict) -> str:
    out = io.StringIO()
    writer = FormulaSafeCSVWriter(out)
    writer.writerow(["tenant", report["tenant"], "period", report["period"], "currency", report["currency"]])
    writer.writerow(
        ["metric", "dimension", "usage_month", "pricing_version", "tier_from", "quantity", "unit_price", "amount"]
    )
    for line in report["lines"]:
        writer.writerow(
            [
                line["metric"],
                line["dimension"],
                line["usage_month"],
                line["pricing_version"],
                _plain(line["tier_from"]),
                _plain(line["quantity"]),
                _plain(line["unit_price"]),
                _plain(line["amount"]),
            ]
        )
    writer.writerow(["total", "", "", "", "", "", "", _plain(report["total"])])
    return out.getvalue()


def as_pdf(report: dict, *, tenant_name: str) -> bytes:
    from weasyprint import HTML

    labels = dict(UsageMetric.choices)
    with translation.override("tr"):
        rows = [{**line, "label": str(labels.get(line["metric"], line["metric"]))} for line in report["lines"]]
        html = render_to_string(
            "billing/usage_report_pdf.html", {"report": report, "rows": rows, "tenant_name": tenant_name}
        )
    return HTML(string=html).write_pdf()
