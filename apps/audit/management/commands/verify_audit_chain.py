from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from apps.audit import selectors, services, witness
from apps.audit.db_verification import verify_database


class Command(BaseCommand):
    help = "Verify the audit hash chain and its signed checkpoints; exits 0 when intact, else names the first problem."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_seq", type=int, help="first seq to check (default 1); resuming "
                            "right after a checkpoint keeps its Merkle roots checked")  # fmt: skip
        parser.add_argument("--to", dest="to_seq", type=int, help="last seq to check (default: the head)")
        parser.add_argument(
            "--resume", action="store_true", help="check only what came after the latest signed checkpoint"
        )
        parser.add_argument("--processes", type=int, default=1, help="split the walk at checkpoints (PostgreSQL)")
        parser.add_argument(
            "--connections", type=int, help="database connections checking chunks at once in this process "
            "(PostgreSQL; default AUDIT_VERIFY_CONNECTIONS, 2)",
        )  # fmt: skip
        parser.add_argument(
            "--trusted-checkpoint", metavar="FILE", help="a checkpoint kept outside the database (JSON, as "
            "`audit_checkpoint` prints it or the sealer logs it) that the chain must still reach; default: "
            "AUDIT_WITNESS_FILE when it exists",
        )  # fmt: skip

    def handle(self, *args, from_seq=None, to_seq=None, processes=1, resume=False, connections=None, **options):
        if resume:
            if from_seq is not None:
                raise CommandError("--resume and --from exclude each other")
            latest = selectors.checkpoints()[-1:]
            from_seq = latest[0]["tree_size"] + 1 if latest else 1
        if from_seq is not None and to_seq is not None and from_seq > to_seq:
            raise CommandError("--from must not be after --to")
        if processes < 1:
            raise CommandError("--processes must be at least 1")
        if connections is not None and connections < 1:
            raise CommandError("--connections must be at least 1")
        trusted, source = self._witness(options.get("trusted_checkpoint"))
        try:
            public_key = services.signing_key().public_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        report = verify_database(
            from_seq=from_seq,
            to_seq=to_seq,
            public_key=public_key,
            processes=processes,
            witness=trusted,
            db_connections=connections,
        )
        if not report.ok:
            f = report.finding
            where = f" (witness {source})" if f.witnessed else ""
            raise CommandError(f"audit chain broken at seq {f.seq} (entry id {f.entry_id}): {f.problem}{where}")
        pending = selectors.unsealed_count()
        witnessed = f"; reaches the witnessed checkpoint at {trusted['tree_size']} ({source})" if trusted else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain intact: {report.checked} entries (seq {report.first_seq}..{report.last_seq}), "
                f"head {report.head_hash}; {report.checkpoints_checked} checkpoints match{witnessed}; "
                f"{pending} awaiting sealing"
            )
        )

    def _witness(self, given):
        """The trusted checkpoint named by --trusted-checkpoint, else the sealer's witness file when present."""
        try:
            if not given:
                held = services.held_witness()
                return held, settings.AUDIT_WITNESS_FILE if held else None
            return witness.read(given), given
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the trusted checkpoint {given}: {exc}") from None
