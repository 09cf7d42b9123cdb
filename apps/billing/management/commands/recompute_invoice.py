from django.core.management.base import BaseCommand, CommandError

from apps.billing import services
from apps.billing.models import Invoice


class Command(BaseCommand):
    help = "Recompute a usage invoice from its inputs (events, pricing versions, cut-off); exit 1 if it differs."

    def add_arguments(self, parser):
        parser.add_argument("invoice", help="invoice id or number")

    def handle(self, *args, invoice, **options):
        found = Invoice.objects.filter(number=invoice).first()
        if found is None and invoice.isdigit():
            found = Invoice.objects.filter(pk=int(invoice)).first()
        if found is None:
            raise CommandError(f"no invoice {invoice}")
        try:
            result = services.recompute_invoice(found)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        stored, computed = result["stored"], result["computed"]
        for key in ("subtotal", "tax", "total"):
            self.stdout.write(f"{key}: stored {stored[key]} computed {computed[key]} {found.currency}")
        if not result["matches"]:
            for line in computed["lines"]:
                if line not in stored["lines"]:
                    self.stdout.write(f"differs: {line}")
            raise CommandError(f"invoice {found.number} does not recompute to its stored lines")
        self.stdout.write(
            self.style.SUCCESS(f"invoice {found.number} recomputes exactly ({len(stored['lines'])} lines)")
        )
