import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from apps.audit import services
from apps.audit.models import AuditCheckpoint


class Command(BaseCommand):
    help = (
        "Print the latest signed audit checkpoint as witness JSON; keep it outside the database and pass it to "
        "verify_audit_chain or python -m apps.audit.verify as --trusted-checkpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument("--new", action="store_true", help="seal pending entries and sign a checkpoint first")

    def handle(self, *args, new=False, **options):
        if new:
            services.seal_pending()
            try:
                services.make_checkpoint(force=True)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from exc
        checkpoint = AuditCheckpoint.objects.order_by("-tree_size").first()
        if checkpoint is None:
            raise CommandError("no audit checkpoint yet (run with --new once the chain has entries)")
        self.stdout.write(json.dumps(services.checkpoint_witness(checkpoint), sort_keys=True))
