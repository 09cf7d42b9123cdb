import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.audit.services import make_checkpoint, seal_pending


class Command(BaseCommand):
    help = "Seal committed audit entries into the chain, in commit order, every --interval seconds."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.2)
        parser.add_argument("--once", action="store_true", help="seal what is pending and exit")

    def handle(self, *args, interval, once, **options):
        while True:
            close_old_connections()
            sealed = seal_pending()
            if sealed:
                self.stdout.write(f"sealed {sealed} entries")
            checkpoint = make_checkpoint()
            if checkpoint:
                self.stdout.write(f"checkpoint at {checkpoint.tree_size} entries, root {checkpoint.merkle_root}")
            if once:
                return
            time.sleep(interval)
