import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.demo.seed import seed_demo
from apps.jobs.models import Job


class Command(BaseCommand):
    help = "Create demo tenants, catalog, licenses, invoices, jobs and one user per role (bulk inserts)."

    def add_arguments(self, parser):
        parser.add_argument("--tenants", type=int, default=3, help="How many tenants (1-6); default 3")
        parser.add_argument("--jobs", type=int, default=100_000, help="How many jobs in all; default 100000")
        parser.add_argument("--days", type=int, default=90, help="Jobs arrive over the last N days; default 90")
        parser.add_argument("--seed", type=int, default=42, help="Random seed, for repeatable data")
        parser.add_argument(
            "--password", default=None, help="Password of the demo users (default: DEMO_PASSWORD or tezgah-demo-2026)"
        )
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when jobs already exist")

    def handle(self, *args, tenants, jobs, days, seed, password, if_empty, **options):
        if if_empty and Job.objects.exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        password = password or settings.DEMO_PASSWORD
        started = time.perf_counter()
        try:
            summary = seed_demo(
                tenants=tenants, jobs=jobs, days=days, seed=seed, password=password, log=self.stdout.write
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.tenants} tenants, {summary.jobs} jobs and {summary.status_changes} status changes "
                f"in {seconds:.1f} s."
            )
        )
        for username, role in summary.users:
            self.stdout.write(f"  user {username:<10} role {role:<10} password {password}")
