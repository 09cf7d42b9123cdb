"""Alert rules: evaluate each rule's metric over its window, track breaches, and deliver notices per channel.

One breach of a rule is one dedup key per channel: it is sent when it starts, again every
`repeat_every_minutes` while it stands, and once more as "resolved" when it ends. During a channel's
quiet hours only critical notices go out; the rest wait (status "held") and go at the next evaluation
after the quiet hours end, if the breach still stands (a resolution is then sent too).
"""

import datetime as dt
import json
import logging
import smtplib
import zoneinfo

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from apps.core import outbound_url
from apps.jobs.models import Job, JobStatus

from . import constants
from .models import (
    AlertChannel,
    AlertMetric,
    AlertNotice,
    AlertRule,
    AlertSeverity,
    ChannelKind,
    NoticeKind,
    NoticeStatus,
)
from .selectors import duration_percentiles

logger = logging.getLogger(__name__)


def in_quiet_hours(channel: AlertChannel, now: dt.datetime) -> bool:
    """True when `now` falls in the channel's quiet hours, read on the wall clock of its time zone."""
    start, end = channel.quiet_start, channel.quiet_end
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(zoneinfo.ZoneInfo(channel.quiet_tz)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight, e.g. 22:00-07:00


def measure(rule: AlertRule, now: dt.datetime) -> tuple[float | None, int]:
    """The rule's metric over jobs of its tenant that finished in the window ending at `now`, and how many."""
    jobs = Job.objects.filter(
        tenant_id=rule.tenant_id, finished_at__gt=now - dt.timedelta(minutes=rule.window_minutes), finished_at__lte=now
    ).order_by()
    if rule.metric == AlertMetric.FAILURE_RATE:
        counts = jobs.aggregate(
            s=Count("id", filter=Q(status=JobStatus.SUCCEEDED)), f=Count("id", filter=Q(status=JobStatus.FAILED))
        )
        decided = counts["s"] + counts["f"]
        return (round(100 * counts["f"] / decided, 2) if decided else None), decided
    n = jobs.filter(duration_ms__isnull=False).count()
    return duration_percentiles(jobs, n)["p95"], n


def _key(rule: AlertRule, kind: str, since: dt.datetime) -> str:
    return f"rule-{rule.pk}:{kind}:{since.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def evaluate_rule(rule: AlertRule, now: dt.datetime) -> None:
    """Update the rule's state from its metric and create the notices a new breach or a resolution needs."""
    value, n = measure(rule, now)
    breached = value is not None and n >= rule.min_jobs and value > rule.threshold
    channels = list(rule.channels.filter(is_active=True))
    with transaction.atomic():
        if breached:
            if rule.breached_since is None:
                rule.breached_since = now
            key = _key(rule, NoticeKind.FIRING, rule.breached_since)
            for channel in channels:
                AlertNotice.objects.get_or_create(
                    channel=channel,
                    dedup_key=key,
                    defaults={"rule": rule, "kind": NoticeKind.FIRING, "severity": rule.severity, "created_at": now},
                )
            AlertNotice.objects.filter(rule=rule, dedup_key=key).update(value=value)
        elif rule.breached_since is not None:
            firing_key = _key(rule, NoticeKind.FIRING, rule.breached_since)
            # Only channels that were told of the breach hear that it is over.
            told = set(
                AlertNotice.objects.filter(rule=rule, dedup_key=firing_key, send_count__gt=0).values_list(
                    "channel_id", flat=True
                )
            )
            for channel in channels:
                if channel.pk in told:
                    AlertNotice.objects.get_or_create(
                        channel=channel,
                        dedup_key=_key(rule, NoticeKind.RESOLVED, rule.breached_since),
                        defaults={
                            "rule": rule,
                            "kind": NoticeKind.RESOLVED,
                            "severity": rule.severity,
                            "created_at": now,
                            "value": value,
                        },
                    )
            rule.breached_since = None
        rule.last_value = value
        rule.last_evaluated_at = now
        rule.save(update_fields=["breached_since", "last_value", "last_evaluated_at"])


def _due(notice: AlertNotice, rule: AlertRule, now: dt.datetime) -> bool:
    if notice.kind == NoticeKind.RESOLVED:
        return notice.send_count == 0
    if rule.breached_since is None or notice.dedup_key != _key(rule, NoticeKind.FIRING, rule.breached_since):
        return False  # an old breach: its resolution (if any) speaks for it now
    if notice.send_count == 0:
        return True
    return now - notice.last_sent_at >= dt.timedelta(minutes=rule.repeat_every_minutes)


def deliver_due(rule: AlertRule, now: dt.datetime) -> list[AlertNotice]:
    """Send the rule's notices that are due; hold non-critical ones in quiet hours. Returns those sent."""
    sent = []
    pending = AlertNotice.objects.filter(rule=rule).exclude(kind=NoticeKind.RESOLVED, send_count__gt=0)
    for notice in pending.select_related("channel", "rule__tenant"):
        if not _due(notice, rule, now):
            continue
        if notice.severity != AlertSeverity.CRITICAL and in_quiet_hours(notice.channel, now):
            if notice.status != NoticeStatus.HELD:
                notice.status = NoticeStatus.HELD
                notice.save(update_fields=["status"])
            continue
        channel = notice.channel
        if channel.open_until and now < channel.open_until:
            continue  # circuit open: the channel failed repeatedly; the notice waits for the cool-down
        try:
            send_notice(notice, now)
        except Exception as exc:  # a channel that is down must not stop the others; retried next minute
            # The stored error is shown in the admin: only its kind, never the socket error, or a webhook
            # target would tell its editor which internal ports answer (issue 11).
            logger.warning("Alert notice %s to channel %s failed: %s", notice.dedup_key, channel.pk, exc)
            notice.status = NoticeStatus.FAILED
            notice.last_error = _failure_text(exc)
            notice.save(update_fields=["status", "last_error"])
            _channel_failed(channel, now)
            continue
        if channel.consecutive_failures or channel.open_until:
            channel.consecutive_failures = 0
            channel.open_until = None
            channel.save(update_fields=["consecutive_failures", "open_until"])
        notice.status = NoticeStatus.SENT
        notice.last_sent_at = now
        notice.send_count += 1
        notice.last_error = ""
        notice.save(update_fields=["status", "last_sent_at", "send_count", "last_error"])
        sent.append(notice)
    return sent


def _channel_failed(channel: AlertChannel, now: dt.datetime) -> None:
    """Count a failed delivery; enough in a row open the channel's circuit for the cool-down."""
    channel.consecutive_failures += 1
    if channel.consecutive_failures >= constants.ALERT_BREAKER_FAILURES:
        channel.open_until = now + dt.timedelta(minutes=constants.ALERT_BREAKER_COOLDOWN_MINUTES)
    channel.save(update_fields=["consecutive_failures", "open_until"])


def _failure_text(exc: Exception) -> str:
    if isinstance(exc, outbound_url.OutboundRefused | requests.RequestException):
        return outbound_url.failure_text(exc)
    # E-mail goes to the SMTP server of the settings (EMAIL_HOST), not to an address an admin typed, so its
    # reason may be specific; it still never carries an address.
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the mail server (EMAIL_HOST)"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "the mail server refused the sign-in (EMAIL_HOST_USER)"
    if isinstance(exc, smtplib.SMTPException):
        return f"mail server error: {type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):  # other socket errors carry addresses
        return outbound_url.CONNECTION_TEXT
    return "delivery failed"


def webhook_session():
    """Keep-alive session for webhooks, through the outbound-URL guard (ALERT_WEBHOOK_ALLOWED_HOSTS)."""
    return outbound_url.session(settings.ALERT_WEBHOOK_ALLOWED_HOSTS, setting="ALERT_WEBHOOK_ALLOWED_HOSTS")


def notice_text(notice: AlertNotice) -> str:
    rule = notice.rule
    params = {
        "severity": notice.get_severity_display(),
        "rule": rule.name,
        "tenant": rule.tenant.name,
        "metric": rule.get_metric_display(),
        "value": "-" if notice.value is None else number_format(notice.value, decimal_pos=None, use_l10n=True),
        "threshold": number_format(rule.threshold, use_l10n=True),
        "minutes": number_format(rule.window_minutes, use_l10n=True, force_grouping=True),  # 100.000, not 100000
    }
    if notice.kind == NoticeKind.RESOLVED:
        return _("[%(severity)s] Resolved: %(rule)s (%(tenant)s), %(metric)s is %(value)s") % params
    return (
        _(
            "[%(severity)s] %(rule)s (%(tenant)s): %(metric)s is %(value)s over the last %(minutes)s minutes, "
            "above %(threshold)s"
        )
        % params
    )


def send_notice(notice: AlertNotice, now: dt.datetime) -> None:
    """Deliver one notice on its channel: an e-mail through Django's mail backend, or a JSON POST."""
    with translation.override("tr"):
        text = notice_text(notice)
    channel = notice.channel
    if channel.kind == ChannelKind.EMAIL:
        send_mail(subject=text[:200], message=text, from_email=None, recipient_list=[channel.target])
        return
    rule = notice.rule
    body = {
        # "text" is what Slack's incoming webhooks read; the rest is for machines.
        "text": text,
        "state": notice.kind,
        "severity": notice.severity,
        "rule": rule.name,
        "rule_id": rule.pk,
        "tenant": rule.tenant.slug,
        "metric": rule.metric,
        "value": notice.value,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "dedup_key": notice.dedup_key,
        "sent_at": now.isoformat(),
    }
    response = webhook_session().post(
        channel.target,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "X-Tezgah-Dedup-Key": notice.dedup_key},
        timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS,
    )
    if not 200 <= response.status_code < 300:  # a redirect is not followed, so it is a failure too
        raise requests.HTTPError(outbound_url.status_text(response.status_code), response=response)


def evaluate_all(now: dt.datetime | None = None) -> int:
    """Evaluate every active rule at `now` and deliver what is due; returns how many notices were sent."""
    now = now or timezone.now()
    sent = 0
    for rule in AlertRule.objects.filter(is_active=True).select_related("tenant"):
        try:
            evaluate_rule(rule, now)
            sent += len(deliver_due(rule, now))
        except Exception:  # one broken rule must not silence the others
            logger.exception("Alert rule %s could not be evaluated", rule.pk)
    return sent
