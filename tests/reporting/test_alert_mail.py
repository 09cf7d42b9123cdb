"""Alert e-mail in the zero-setup default: written to files under var/mail/ where a user can read it, and a
delivery that fails (SMTP refused) shows its reason in the panel's alert history."""

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from apps.reporting import alerts
from apps.reporting.models import AlertChannel, AlertNotice, AlertRule
from tests.conftest import verified_client


def _mail_settings(**env):
    """EMAIL_BACKEND and EMAIL_FILE_PATH as a fresh process reads them from `env` (settings are read once)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup();"
        "from django.conf import settings as s; print(s.EMAIL_BACKEND); print(s.EMAIL_FILE_PATH)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    clean.update(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="mail-settings-test", **env)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_without_an_smtp_host_mail_goes_to_files_under_var_mail(tmp_path):
    backend, path = _mail_settings(EMAIL_HOST="", TEZGAH_VAR_DIR=str(tmp_path))
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert path == str(tmp_path / "mail")
    assert _mail_settings(EMAIL_HOST="", EMAIL_FILE_PATH="/srv/mail")[1] == "/srv/mail"


def test_an_smtp_host_or_an_explicit_backend_wins():
    assert _mail_settings(EMAIL_HOST="smtp.example.com")[0] == "django.core.mail.backends.smtp.EmailBackend"
    console = "django.core.mail.backends.console.EmailBackend"
    assert _mail_settings(EMAIL_HOST="", EMAIL_BACKEND=console)[0] == console


@pytest.fixture
def breached(tenant_a):
    """A critical rule in breach with one e-mail notice due (quiet hours cannot hold it)."""
    channel = AlertChannel.objects.create(
        tenant=tenant_a, name="Vardiya amiri", kind="email", target="amir@example.com"
    )
    since = timezone.now() - dt.timedelta(minutes=1)
    rule = AlertRule.objects.create(
        tenant=tenant_a,
        name="Uzun pencere",
        metric="failure_rate",
        threshold=5,
        window_minutes=100_000,
        severity="critical",
        breached_since=since,
    )
    rule.channels.set([channel])
    notice = AlertNotice.objects.create(
        rule=rule,
        channel=channel,
        dedup_key=alerts._key(rule, "firing", since),
        kind="firing",
        severity="critical",
        value=12.5,
        created_at=since,
    )
    return rule, notice


@pytest.mark.django_db
def test_the_file_backend_writes_the_alert_where_a_user_can_read_it(settings, tmp_path, breached):
    rule, _notice = breached
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    assert [n.status for n in alerts.deliver_due(rule, timezone.now())] == ["sent"]
    (message,) = (tmp_path / "mail").iterdir()
    text = message.read_text(encoding="utf-8")
    assert "To: amir@example.com" in text and "100.000 dakika" in text


@pytest.mark.django_db
def test_a_refused_smtp_delivery_shows_its_reason_in_the_alert_history(settings, breached, analyst):
    rule, notice = breached
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    assert alerts.deliver_due(rule, timezone.now() + dt.timedelta(seconds=1)) == []
    notice.refresh_from_db()
    assert notice.status == "failed" and "refused" in notice.last_error.lower()
    html = verified_client(Client(), analyst).get("/panel/alerts/").content.decode()
    assert notice.last_error in html and "Başarısız" in html
