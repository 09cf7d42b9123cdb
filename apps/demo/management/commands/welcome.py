import os

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.procfile import read_procfile
from apps.demo.seed import DEMO_USERS

# What each Procfile process is, for the welcome text; a process not named here is shown by its command.
PROCESS_ROLES = {
    "web": "the web server (gunicorn): admin, panel, API",
    "worker": "Celery worker: ERP deliveries, exports, alerts",
    "beat": "Celery beat: the periodic tasks",
    "sealer": "the audit sealer: chains and signs the audit log",
    "mock-erp": "the mock ERP the sync talks to",
}


class Command(BaseCommand):
    help = "Print the processes `make run` starts, where the admin and panel are, the demo logins and first sign-in."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))

    def handle(self, *args, port, procfile, **options):
        # localhost, not 127.0.0.1: browsers refuse passkeys (WebAuthn) on an IP address (WEBAUTHN_RP_ID).
        url = f"http://localhost:{port}"
        processes = "\n".join(
            f"  {name:<10} {PROCESS_ROLES.get(name, command)}" for name, command in read_procfile(procfile)
        )
        users = "\n".join(f"    {name:<10} ({role or 'superuser'})" for name, role in DEMO_USERS)
        root = ""
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            root = "\nRunning as root: fine for this demo; in production run the workers as an unprivileged user.\n"
        self.stdout.write(
            f"""
`make run` starts these processes (Ctrl-C stops them all):
{processes}

  Admin console    {url}/admin/
  Analyst panel    {url}/panel/
  API docs         {url}/api/docs/
  Health           {url}/health/ready

Demo users, all with the password {settings.DEMO_PASSWORD!r}:
{users}

First sign-in (every staff account needs TOTP; the panel uses the same sign-in):
  1. Enter the user name and password.
  2. Scan the QR code with an authenticator app (FreeOTP, Aegis, Google Authenticator, 1Password...),
     or type the key shown under it.
  3. Enter the 6-digit code the app shows; then write down the backup codes shown once.
Later sign-ins ask for the password, then the current code (or one unused backup code).
A passkey or security key can then be added as the second factor under "Geçiş anahtarları" in the admin's
header (open the console at localhost as above: browsers refuse passkeys on 127.0.0.1).
{root}"""
        )
