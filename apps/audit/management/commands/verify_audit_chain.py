from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from apps.audit import selectors, services
from apps.audit.verification import verify_entries


class Command(BaseCommand):
    help = "Verify the audit hash chain; exits 0 when intact, otherwise names the first bad entry."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_seq", type=int, help="first seq to check (default 1)")
        parser.add_argument("--to", dest="to_seq", type=int, help="last seq to check (default: the head)")

    def handle(self, *args, from_seq=None, to_seq=None, **options):
        if from_seq is not None and to_seq is not None and from_seq > to_seq:
            raise CommandError("--from must not be after --to")
        expected, prev = selectors.chain_start(from_seq)
        try:
            public_key = services.signing_key().public_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        report = verify_entries(
            selectors.chain_entries(from_seq=from_seq, to_seq=to_seq),
            expected_seq=expected,
            prev_hash=prev,
            checkpoints=selectors.checkpoints(up_to=to_seq),
            public_key=public_key,
        )
        if not report.ok:
            f = report.finding
            raise CommandError(f"audit chain broken at seq {f.seq} (entry id {f.entry_id}): {f.problem}")
        pending = selectors.unsealed_count()
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain intact: {report.checked} entries (seq {report.first_seq}..{report.last_seq}), "
                f"head {report.head_hash}; {report.checkpoints_checked} checkpoints match; "
                f"{pending} awaiting sealing"
            )
        )
