from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from apps.audit import services, signatures


class Command(BaseCommand):
    help = "Print the PEM public key that verifies audit checkpoints (give it to auditors)."

    def handle(self, *args, **options):
        try:
            key = services.signing_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(signatures.public_pem(key.public_key()), ending="")
        self.stderr.write(f"key id {signatures.key_id(key.public_key())}")
