from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from apps.erp import services
from apps.erp.models import DeadLetterCause, ErrorClass


def _when(value, name):
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(f"--{name} {value!r} is not an ISO 8601 time with a zone, e.g. 2026-11-23T10:00:00+03:00")
    return parsed


class Command(BaseCommand):
    help = "Replay dead-lettered outbound ERP messages by id or by time range and filter (--dry-run lists them)."

    def add_arguments(self, parser):
        parser.add_argument("--sync-id", type=int, action="append", dest="sync_ids", help="repeat for several")
        parser.add_argument("--since", help="dead-lettered at or after (ISO 8601 with zone)")
        parser.add_argument("--until", help="dead-lettered before (ISO 8601 with zone)")
        parser.add_argument("--error-class", choices=ErrorClass.values)
        parser.add_argument("--cause", choices=DeadLetterCause.values)
        parser.add_argument("--reason", default="", help="recorded in the audit entry")
        parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")
        parser.add_argument(
            "--include-superseded",
            action="store_true",
            help="also send messages whose job has a later message acknowledged (the ERP goes back to them)",
        )

    def handle(self, *args, **options):
        since = _when(options["since"], "since") if options["since"] else None
        until = _when(options["until"], "until") if options["until"] else None
        if not (options["sync_ids"] or since or until or options["error_class"] or options["cause"]):
            raise CommandError("Name the messages: --sync-id, or a filter (--since, --until, --error-class, --cause).")
        if since and until and since >= until:
            raise CommandError("--until must be after --since.")
        result = services.replay_matching(
            actor=None,
            sync_ids=options["sync_ids"],
            since=since,
            until=until,
            error_class=options["error_class"],
            cause=options["cause"],
            dry_run=options["dry_run"],
            reason=options["reason"],
            include_superseded=options["include_superseded"],
        )
        verb = "would replay" if result.dry_run else "replayed"
        self.stdout.write(f"{verb} {len(result.replayed)}: {' '.join(map(str, result.replayed)) or '-'}")
        for pk, why in result.skipped:
            self.stderr.write(f"{'would skip' if result.dry_run else 'skipped'} message {pk}: {why}")
