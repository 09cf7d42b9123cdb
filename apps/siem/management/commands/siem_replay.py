"""Re-send SIEM records of a time range (and optionally one event) to SIEM_ENDPOINT, in order."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from apps.siem import services, transport


def _when(value: str, name: str):
    from datetime import UTC, datetime, time

    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--{name}: {value!r} is not a date or an ISO 8601 time")
        moment = datetime.combine(day, time.min)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Re-send SIEM records whose time is in [--since, --until) (and whose event is --event) to SIEM_ENDPOINT."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601 time or date (inclusive)")
        parser.add_argument("--until", help="ISO 8601 time or date (exclusive)")
        parser.add_argument("--event", help="event name, e.g. security.admin_ip_refused, or a prefix ending in *")
        parser.add_argument("--reason", default="", help="why (kept in the audit entry)")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be sent")

    def handle(self, *args, **options):
        since = _when(options["since"], "since") if options["since"] else None
        until = _when(options["until"], "until") if options["until"] else None
        if since and until and since >= until:
            raise CommandError("--since must be before --until")
        records = services.replay_queryset(since=since, until=until, event=options["event"])
        if options["dry_run"]:
            self.stdout.write(f"{records.count()} records would be sent")
            return
        try:
            sent = services.resend(records, actor=("system", "siem_replay"), reason=options["reason"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"SIEM replay failed: {transport.failure_text(exc)}") from exc
        self.stdout.write(f"{sent} records sent to {services.configured_endpoint()}")
