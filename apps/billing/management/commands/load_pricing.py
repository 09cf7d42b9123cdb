from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.billing import services


class Command(BaseCommand):
    help = "Load configs/pricing.yaml (or --file) into pricing versions; entries already loaded add nothing."

    def add_arguments(self, parser):
        parser.add_argument("--file", default=None, help="YAML price list (default: BILLING_PRICING_FILE)")

    def handle(self, *args, file=None, **options):
        try:
            versions = services.load_pricing_file(file or settings.BILLING_PRICING_FILE)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        for v in versions:
            self.stdout.write(f"pricing {v} ({v.rates.count()} rates)")
