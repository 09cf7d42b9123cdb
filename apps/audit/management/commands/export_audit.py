import hashlib
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from apps.audit import selectors, services


class Command(BaseCommand):
    help = "Write a verifiable forensic export of the audit log (JSON lines) to a file or stdout."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")
        parser.add_argument("--format", choices=["json", "csv"], default="json", help="JSON lines (verifiable) or CSV")
        parser.add_argument("--date-from", help="ISO 8601; entries from this time in full")
        parser.add_argument("--date-to", help="ISO 8601, exclusive")
        parser.add_argument("--actor", help="actor id")
        parser.add_argument("--action", help="action, e.g. job.status.changed")

    def handle(self, *args, output=None, date_from=None, date_to=None, actor=None, action=None, **options):
        fmt = options.get("format") or "json"
        filters = {"actor": actor, "action": action}
        for name, raw in (("date_from", date_from), ("date_to", date_to)):
            if raw:
                value = parse_datetime(raw)
                if value is None or value.tzinfo is None:
                    raise CommandError(f"--{name.replace('_', '-')} {raw!r} is not an ISO 8601 time with a zone")
                filters[name] = value
        digest = hashlib.sha256()
        handle = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            lines = selectors.export_lines(filters)
            chunks = selectors.export_csv_rows(lines) if fmt == "csv" else (line + "\n" for line in lines)
            for data in chunks:
                digest.update(data.encode())
                handle.write(data)
        finally:
            if output:
                handle.close()
        services.record(None, "audit.exported", None, {"filters": {k: str(v) for k, v in filters.items() if v},
                                                         "sha256": digest.hexdigest(), "via": "command", "format": fmt},
                        object_type="audit.auditlog")  # fmt: skip
        self.stderr.write(f"sha256 {digest.hexdigest()}")
