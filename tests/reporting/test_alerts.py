"""Alert rules: breaches alert within two minutes (beat runs every minute), quiet hours hold non-critical
notices (wrapping midnight, in Istanbul and in a zone with DST), repeats follow repeat_every, and a
resolved breach sends one "resolved". Webhooks post JSON to a real local HTTP server."""

import datetime as dt
import json
import threading
import zoneinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from apps.jobs.models import JobStatus
from apps.reporting import alerts
from apps.reporting.models import AlertChannel, AlertNotice, AlertRule, NoticeStatus
from apps.reporting.tasks import evaluate_alert_rules
from tests import factories

pytestmark = pytest.mark.django_db
IST = zoneinfo.ZoneInfo("Europe/Istanbul")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"headers": dict(self.headers), "json": json.loads(body)})
        self.send_response(self.server.answer)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server(settings):
    """A real HTTP server on an ephemeral port that records every POST (like a Slack incoming webhook);
    loopback is allowlisted for it (the outbound-URL guard refuses it otherwise)."""
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.received = []
    server.answer = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tezgah"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def line(tenant_a):
    post = factories.PostFactory(tenant=tenant_a, code="M01-P1")
    model_type = factories.ModelTypeFactory(tenant=tenant_a, code="MT01")
    return {"tenant": tenant_a, "post": post, "machine": post.machine, "model_type": model_type}


def finish_jobs(line, when, *, failed=0, succeeded=0, duration_ms=60_000):
    for status, n in ((JobStatus.FAILED, failed), (JobStatus.SUCCEEDED, succeeded)):
        for _ in range(n):
            factories.JobFactory(
                **line,
                status=status,
                created_at=when - dt.timedelta(minutes=5),
                finished_at=when,
                duration_ms=duration_ms,
            )


def rule_with(channels, tenant, **fields):
    defaults = {
        "name": "Hata artışı",
        "metric": "failure_rate",
        "threshold": 20,
        "window_minutes": 15,
        "min_jobs": 5,
        "severity": "warning",
        "repeat_every_minutes": 30,
    }
    rule = AlertRule.objects.create(tenant=tenant, **{**defaults, **fields})
    rule.channels.set(channels)
    return rule


def email_channel(tenant, **quiet):
    return AlertChannel.objects.create(
        tenant=tenant, name="Vardiya amiri", kind="email", target="amir@example.com", **quiet
    )


QUIET_22_07 = {"quiet_start": dt.time(22, 0), "quiet_end": dt.time(7, 0), "quiet_tz": "Europe/Istanbul"}


def test_beat_evaluates_the_rules_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["evaluate-alert-rules"]
    assert entry["task"] == "apps.reporting.tasks.evaluate_alert_rules" and entry["schedule"] == 60.0


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ((21, 59), False),
        ((22, 0), True),
        ((23, 59), True),
        ((0, 0), True),
        ((6, 59), True),
        ((7, 0), False),
        ((12, 0), False),
    ],
)
def test_quiet_hours_wrap_midnight_on_istanbul_time(tenant_a, local, quiet):
    channel = email_channel(tenant_a, **QUIET_22_07)
    now = dt.datetime(2026, 7, 1, *local, tzinfo=IST)  # Istanbul is UTC+3 all year
    assert alerts.in_quiet_hours(channel, now.astimezone(dt.UTC)) is quiet


@pytest.mark.parametrize(
    ("utc", "quiet"),
    [
        # Saturday 28 March 2026, CET (UTC+1): 21:30 UTC is 22:30 in Berlin; 05:30 UTC is 06:30.
        (dt.datetime(2026, 3, 28, 20, 30), False),
        (dt.datetime(2026, 3, 28, 21, 30), True),
        (dt.datetime(2026, 3, 28, 5, 30), True),
        # Sunday 29 March 2026, CEST (UTC+2) from 02:00: the same UTC times are an hour later on the wall clock.
        (dt.datetime(2026, 3, 29, 20, 30), True),
        (dt.datetime(2026, 3, 29, 5, 30), False),
        (dt.datetime(2026, 3, 29, 4, 30), True),
    ],
)
def test_quiet_hours_follow_the_wall_clock_across_a_dst_change(tenant_a, utc, quiet):
    channel = email_channel(tenant_a, quiet_start=dt.time(22, 0), quiet_end=dt.time(7, 0), quiet_tz="Europe/Berlin")
    assert alerts.in_quiet_hours(channel, utc.replace(tzinfo=dt.UTC)) is quiet


def test_a_breach_is_e_mailed_within_two_minutes(tenant_a, line):
    rule_with([email_channel(tenant_a)], tenant_a)
    breach_at = dt.datetime(2026, 11, 23, 14, 0, 10, tzinfo=IST)
    with time_machine.travel(breach_at, tick=False) as clock:
        evaluate_alert_rules()
        assert mail.outbox == []
        finish_jobs(line, breach_at, failed=3, succeeded=5)  # 37.5 % failed, over 20 %
        clock.shift(dt.timedelta(seconds=60))  # the next beat tick
        evaluate_alert_rules()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["amir@example.com"]
    assert "Hata artışı" in message.subject
    # Turkish text and number format: a decimal comma.
    assert "son 15 dakikada Hata oranı (%) 37,5" in message.body


def test_non_critical_alerts_wait_out_quiet_hours_and_critical_ones_do_not(tenant_a, line):
    quiet = email_channel(tenant_a, **QUIET_22_07)
    warning = rule_with([quiet], tenant_a, name="Uyarı kuralı")
    critical = rule_with([quiet], tenant_a, name="Kritik kural", severity="critical")
    night = dt.datetime(2026, 11, 23, 23, 30, tzinfo=IST)
    with time_machine.travel(night, tick=False) as clock:
        finish_jobs(line, night, failed=6, succeeded=2)
        clock.shift(dt.timedelta(seconds=30))
        evaluate_alert_rules()
        assert [m.subject for m in mail.outbox if "Kritik kural" in m.subject]
        assert not [m for m in mail.outbox if "Uyarı kuralı" in m.subject]
        assert AlertNotice.objects.get(rule=warning).status == NoticeStatus.HELD

        # The breach still stands at 07:00 (new failures keep the window over the threshold): sent then.
        morning = dt.datetime(2026, 11, 24, 6, 59, tzinfo=IST)
        clock.move_to(morning)
        finish_jobs(line, morning, failed=6, succeeded=2)
        evaluate_alert_rules()
        assert not [m for m in mail.outbox if "Uyarı kuralı" in m.subject]
        clock.shift(dt.timedelta(minutes=1))
        evaluate_alert_rules()
    assert len([m for m in mail.outbox if "Uyarı kuralı" in m.subject]) == 1
    assert AlertNotice.objects.get(rule=warning).status == NoticeStatus.SENT
    assert AlertNotice.objects.filter(rule=critical).count() == 1


def test_a_standing_breach_repeats_on_schedule_and_a_resolution_is_sent_once(tenant_a, line, webhook_server):
    hook = AlertChannel.objects.create(tenant=tenant_a, name="Slack #uretim", kind="webhook", target=webhook_server.url)
    rule_with([hook], tenant_a, metric="p95_ms", threshold=100_000, repeat_every_minutes=30, severity="critical")
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    with time_machine.travel(start, tick=False) as clock:
        for minute in range(0, 75):
            clock.move_to(start + dt.timedelta(minutes=minute))
            if minute < 61:  # slow jobs keep finishing for an hour, then stop
                finish_jobs(line, start + dt.timedelta(minutes=minute), succeeded=1, duration_ms=200_000)
            evaluate_alert_rules()
        # 15-minute window: the last slow job (minute 60) leaves it at minute 75.
        for minute in range(75, 80):
            clock.move_to(start + dt.timedelta(minutes=minute))
            evaluate_alert_rules()
        clock.move_to(start + dt.timedelta(hours=3))
        evaluate_alert_rules()

    states = [r["json"]["state"] for r in webhook_server.received]
    # Rule needs 5 jobs in the window: first alert at minute 4, then every 30 minutes while breached.
    assert states == ["firing", "firing", "firing", "resolved"]
    sent_at = [dt.datetime.fromisoformat(r["json"]["sent_at"]) for r in webhook_server.received]
    assert [(t - start).total_seconds() / 60 for t in sent_at[:3]] == [4, 34, 64]
    keys = {r["json"]["dedup_key"] for r in webhook_server.received if r["json"]["state"] == "firing"}
    assert len(keys) == 1, "one breach keeps one dedup key"
    first = webhook_server.received[0]
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["json"]["text"].startswith("[Kritik]")
    assert first["json"]["value"] == 200_000 and first["json"]["metric"] == "p95_ms"


def test_a_failing_webhook_is_retried_on_the_next_run(tenant_a, line, webhook_server):
    hook = AlertChannel.objects.create(tenant=tenant_a, name="Kanca", kind="webhook", target=webhook_server.url)
    rule_with([hook], tenant_a, severity="critical")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    webhook_server.answer = 503
    with time_machine.travel(now, tick=False) as clock:
        finish_jobs(line, now, failed=5)
        evaluate_alert_rules()
        notice = AlertNotice.objects.get()
        assert notice.status == NoticeStatus.FAILED and "503" in notice.last_error
        webhook_server.answer = 200
        clock.shift(dt.timedelta(minutes=1))
        evaluate_alert_rules()
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT and notice.send_count == 1
    assert len(webhook_server.received) == 2


def test_too_few_jobs_is_not_a_breach(tenant_a, line):
    rule_with([email_channel(tenant_a)], tenant_a, min_jobs=5)
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    with time_machine.travel(now, tick=False):
        finish_jobs(line, now, failed=2)
        evaluate_alert_rules()
    assert mail.outbox == []


def test_a_channel_that_keeps_failing_is_cut_off_then_tried_again(tenant_a, line, webhook_server):
    from apps.reporting import constants

    hook = AlertChannel.objects.create(tenant=tenant_a, name="Kanca", kind="webhook", target=webhook_server.url)
    rule_with([hook], tenant_a, severity="critical")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    webhook_server.answer = 500
    with time_machine.travel(now, tick=False) as clock:
        finish_jobs(line, now, failed=5)
        for _ in range(constants.ALERT_BREAKER_FAILURES + 2):
            evaluate_alert_rules()
            clock.shift(dt.timedelta(minutes=1))
        # Open after the third failure: the next two minutes made no request.
        assert len(webhook_server.received) == constants.ALERT_BREAKER_FAILURES
        hook.refresh_from_db()
        assert hook.open_until is not None
        webhook_server.answer = 200
        clock.move_to(hook.open_until)
        finish_jobs(line, hook.open_until, failed=5)  # the breach still stands
        evaluate_alert_rules()
    hook.refresh_from_db()
    assert (hook.consecutive_failures, hook.open_until) == (0, None)
    assert AlertNotice.objects.get().status == NoticeStatus.SENT
    assert len(webhook_server.received) == constants.ALERT_BREAKER_FAILURES + 1


def test_a_rule_cannot_send_to_another_tenants_channel(tenant_a, tenant_b):
    from apps.reporting.admin import AlertRuleForm

    theirs = AlertChannel.objects.create(tenant=tenant_b, name="Onların kanalı", kind="email", target="b@example.com")
    form = AlertRuleForm(
        data={
            "tenant": tenant_a.pk,
            "name": "Kural",
            "metric": "failure_rate",
            "threshold": 10,
            "window_minutes": 15,
            "min_jobs": 5,
            "severity": "warning",
            "repeat_every_minutes": 30,
            "channels": [theirs.pk],
            "is_active": True,
        }
    )
    assert not form.is_valid()
    assert "channels" in form.errors


def test_an_unknown_quiet_hours_time_zone_is_refused(tenant_a):
    from django.core.exceptions import ValidationError

    channel = AlertChannel(tenant=tenant_a, name="K", kind="email", target="a@example.com", quiet_tz="Europe/Istanbull")
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert "quiet_tz" in caught.value.message_dict


def test_one_broken_rule_does_not_stop_the_others(tenant_a, line):
    broken = email_channel(tenant_a)
    AlertChannel.objects.filter(pk=broken.pk).update(
        quiet_tz="Nowhere/Atlantis", quiet_start=dt.time(0), quiet_end=dt.time(23)
    )
    broken.refresh_from_db()
    rule_with([broken], tenant_a, name="Bozuk")
    good = AlertChannel.objects.create(tenant=tenant_a, name="Sağlam", kind="email", target="ok@example.com")
    rule_with([good], tenant_a, name="Sağlam kural")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    with time_machine.travel(now, tick=False):
        finish_jobs(line, now, failed=5)
        evaluate_alert_rules()
    assert [m.to for m in mail.outbox] == [["ok@example.com"]]


# ---------------------------------------------------------------- outbound-URL guard (issue 11)


def _webhook_form(tenant, target):
    """The admin's form for a channel: a ModelForm, so the model's clean() runs on it."""
    from django.forms import modelform_factory

    form_class = modelform_factory(AlertChannel, fields=["tenant", "name", "kind", "target", "quiet_tz", "is_active"])
    data = {"tenant": tenant.pk, "name": "Kanca", "kind": "webhook", "target": target, "quiet_tz": "Europe/Istanbul"}
    return form_class(data={**data, "is_active": "on"})


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:6379/",
        "http://localhost:8000/hook",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://2130706433/",
    ],
)
def test_a_webhook_channel_to_an_internal_address_is_refused_at_save_time(tenant_a, settings, target):
    from django.core.exceptions import ValidationError

    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = []
    channel = AlertChannel(tenant=tenant_a, name="Kanca", kind="webhook", target=target)
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert list(caught.value.message_dict) == ["target"]


def test_the_admin_form_says_why_and_names_the_setting(tenant_a, settings):
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = []
    form = _webhook_form(tenant_a, "http://127.0.0.1:6379/")
    assert not form.is_valid()
    with translation_override("en"):
        message = str(form.errors["target"][0])
    assert "loopback" in message and "ALERT_WEBHOOK_ALLOWED_HOSTS" in message
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:6379"]
    assert _webhook_form(tenant_a, "http://127.0.0.1:6379/").is_valid()


def translation_override(language):
    from django.utils import translation

    return translation.override(language)


def test_an_e_mail_channel_is_not_checked_as_a_url(tenant_a, settings):
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = []
    AlertChannel(tenant=tenant_a, name="Posta", kind="email", target="amir@example.com").full_clean()


def test_a_stored_webhook_to_loopback_is_refused_at_send_time_without_a_connection(tenant_a, line, webhook_server):
    # A channel saved before the guard (or written around the admin) is checked again when it sends.
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = []
    hook = AlertChannel.objects.create(tenant=tenant_a, name="Kanca", kind="webhook", target=webhook_server.url)
    rule_with([hook], tenant_a, severity="critical")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    with time_machine.travel(now, tick=False):
        finish_jobs(line, now, failed=5)
        evaluate_alert_rules()
    notice = AlertNotice.objects.get()
    assert notice.status == NoticeStatus.FAILED and notice.last_error == "refused by outbound policy"
    assert webhook_server.received == []


def test_a_delivery_error_names_its_kind_and_not_the_port_that_refused(tenant_a, line, settings):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook = AlertChannel.objects.create(
        tenant=tenant_a, name="Kanca", kind="webhook", target=f"http://127.0.0.1:{port}/"
    )
    rule_with([hook], tenant_a, severity="critical")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    with time_machine.travel(now, tick=False):
        finish_jobs(line, now, failed=5)
        evaluate_alert_rules()
    notice = AlertNotice.objects.get()
    assert notice.status == NoticeStatus.FAILED and notice.last_error == "connection failed"


class _Redirector(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.paths.append(self.path)
        self.send_response(307)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_redirect_is_not_followed_and_counts_as_a_failure(tenant_a, line, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.ALERT_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        hook = AlertChannel.objects.create(tenant=tenant_a, name="Kanca", kind="webhook", target=url)
        rule_with([hook], tenant_a, severity="critical")
        now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST)
        with time_machine.travel(now, tick=False):
            finish_jobs(line, now, failed=5)
            evaluate_alert_rules()
    finally:
        server.shutdown()
        server.server_close()
    notice = AlertNotice.objects.get()
    assert server.paths == ["/hook"]
    assert notice.status == NoticeStatus.FAILED and notice.last_error == "HTTP 307"
