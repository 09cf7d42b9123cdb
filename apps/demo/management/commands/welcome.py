from django.conf import settings
from django.core.management.base import BaseCommand

from apps.jobs.demo import DEMO_USERS


class Command(BaseCommand):
    help = "Print where the console is, the demo logins, and how the first sign-in enrols TOTP."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, port, **options):
        url = f"http://127.0.0.1:{port}"
        users = "\n".join(f"    {name:<10} ({role or 'superuser'})" for name, role in DEMO_USERS)
        self.stdout.write(
            f"""
Tezgah is starting: web, Celery worker and beat (Ctrl-C stops them all).

  Admin console  {url}/admin/
  API docs       {url}/api/docs/
  Health         {url}/health/ready

Demo users, all with the password {settings.DEMO_PASSWORD!r}:
{users}

First sign-in (every staff account needs TOTP):
  1. Enter the user name and password.
  2. Scan the QR code with an authenticator app (FreeOTP, Aegis, Google Authenticator, 1Password...),
     or type the key shown under it.
  3. Enter the 6-digit code the app shows; then write down the backup codes shown once.
Later sign-ins ask for the password, then the current code (or one unused backup code).
"""
        )
