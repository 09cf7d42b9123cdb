from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.roles import missing_capabilities, sync_role_groups


class Command(BaseCommand):
    help = "Re-apply the capability matrix (apps/accounts/capabilities.py) to the role groups."

    def handle(self, *args, **options):
        counts = sync_role_groups(apps)
        for role, count in counts.items():
            self.stdout.write(f"{role}: {count} capabilities")
        missing = missing_capabilities(apps)
        if missing:
            raise CommandError(f"The matrix names capabilities that do not exist: {', '.join(missing)}")
