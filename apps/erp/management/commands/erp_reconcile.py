from django.core.management.base import BaseCommand

from apps.erp import services


class Command(BaseCommand):
    help = "Run the ERP reconciler now: re-enqueue unacknowledged outbound messages, dead-letter them after the cap."

    def handle(self, *args, **options):
        result = services.reconcile_outbound()
        self.stdout.write(f"requeued {result['requeued']}, dead-lettered {result['failed']}")
