"""A run's breaks as CSV, through the formula-safe writer: ERP ids and keys come from outside."""

import io
import json

from django.utils.translation import gettext as _

from apps.core.spreadsheet_safety import FormulaSafeCSVWriter

from . import matching
from .models import Break


def run_breaks_rows(recon_run):
    """The breaks the run found (recomputed from its staged inputs, so exact), each with its break's state now."""
    found = matching.compare(recon_run, recon_run.config.data, columns=recon_run.file.columns)
    states = dict(
        Break.objects.filter(
            profile_id=recon_run.profile_id, fingerprint__in=[b["fingerprint"] for b in found]
        ).values_list("fingerprint", "state")
    )
    for item in sorted(found, key=lambda b: (b["kind"], b["key"])):
        yield item, states.get(item["fingerprint"], "")


def run_breaks_csv(recon_run) -> str:
    out = io.StringIO()
    writer = FormulaSafeCSVWriter(out)
    writer.writerow([_("type"), _("key"), _("ERP id"), _("job"), _("state"), _("details"), _("fingerprint")])
    for item, state in run_breaks_rows(recon_run):
        writer.writerow(
            [
                item["kind"],
                item["key"],
                item["external_id"],
                item["job_id"] or "",
                state,
                json.dumps(item["details"], ensure_ascii=False, sort_keys=True, default=str),
                item["fingerprint"],
            ]
        )
    return out.getvalue()
