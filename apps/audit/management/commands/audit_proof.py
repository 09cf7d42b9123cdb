import json

from django.core.management.base import BaseCommand, CommandError

from apps.audit import selectors
from apps.audit.models import AuditLog


class Command(BaseCommand):
    help = "Print an RFC 6962 inclusion proof of one audit entry in a signed checkpoint (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("entry_id", type=int, help="the entry's id")

    def handle(self, *args, entry_id, **options):
        try:
            bundle = selectors.inclusion_proof_bundle(entry_id)
        except AuditLog.DoesNotExist:
            raise CommandError(f"no audit entry with id {entry_id}") from None
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(bundle, ensure_ascii=False, indent=2, default=str))
