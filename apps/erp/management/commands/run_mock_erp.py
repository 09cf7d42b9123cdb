from django.core.management.base import BaseCommand, CommandError

from apps.erp import mock_server


class Command(BaseCommand):
    help = "Run the mock ERP (POST /erp/v1/jobs/update, GET /erp/v1/health, /_mock/ controls) for development."

    def add_arguments(self, parser):
        mock_server.arguments(parser)

    def handle(self, *args, **options):
        if not 0 <= options["failure_rate"] <= 1:
            raise CommandError("--failure-rate (MOCK_FAILURE_RATE) must be between 0 and 1")

        class Options:
            secret = options["secret"]

        state = mock_server.MockState(
            secrets=mock_server.secrets_from(Options),
            failure_rate=options["failure_rate"],
            log_path=options["log"] or None,
            conflict_on_duplicate=options["conflict_on_duplicate"],
        )
        mock_server.serve(options["host"], options["port"], state, verbose=options["verbose"], out=self.stdout)
