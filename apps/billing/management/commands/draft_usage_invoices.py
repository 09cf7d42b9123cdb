import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Tenant
from apps.billing import services


class Command(BaseCommand):
    help = "Draft (or rewrite the draft of) the usage invoice of a month, for one tenant or every active one."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--tenant", default="", help="tenant slug (default: every active tenant)")

    def handle(self, *args, month, tenant, **options):
        try:
            start = dt.date.fromisoformat(f"{month}-01")
        except ValueError as exc:
            raise CommandError("--month is YYYY-MM") from exc
        tenants = Tenant.objects.filter(slug=tenant) if tenant else Tenant.objects.filter(is_active=True)
        for t in tenants.order_by("pk"):
            try:
                inv = services.draft_usage_invoice(t, start)
            except ValueError as exc:
                self.stderr.write(str(exc))
                continue
            self.stdout.write(f"{inv.number} {t.slug}: {inv.total} {inv.currency} ({inv.lines.count()} lines)")
