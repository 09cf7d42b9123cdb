"""Reads of the ERP sync state: health, depths, breaker states, dead letters to replay."""

from datetime import timedelta

import requests
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from apps.accounts.selectors import scope_to_tenants
from apps.core import outbound_url
from apps.events import selectors as event_selectors

from . import profiles as erp_profiles
from .models import Direction, ErpOutboundDeadLetter, ErpSync, ErpSyncAttempt, IntegrationProfile, SyncStatus

FAILURE_RATE_WINDOW = timedelta(minutes=15)


def depths() -> dict:
    queue = ErpSync.objects.filter(direction=Direction.OUTBOUND, status__in=erp_profiles.IN_FLIGHT).count()
    dlq = ErpOutboundDeadLetter.objects.filter(closed_at__isnull=True).count()
    return {"queue": queue, "dlq": dlq}


def outbox_lag() -> float:
    return event_selectors.outbox_lag_seconds()


def breaker_states() -> dict:
    return {p.name: erp_profiles.breaker(p).state() for p in IntegrationProfile.objects.filter(enabled=True)}


def failure_rate(*, since=None) -> float | None:
    """Failed attempts / all attempts in the last 15 minutes (None when there were none)."""
    since = since or timezone.now() - FAILURE_RATE_WINDOW
    counts = ErpSyncAttempt.objects.filter(started_at__gte=since).aggregate(
        total=Count("id"), failed=Count("id", filter=~Q(outcome="acked"))
    )
    return round(counts["failed"] / counts["total"], 4) if counts["total"] else None


def erp_reachable(profile) -> tuple[bool, str]:
    """Whether the ERP's GET /erp/v1/health answers 200 within 2 s."""
    url = erp_profiles.base_url(profile)
    if not url:
        return False, "no base URL"
    try:
        reply = erp_profiles.http().get(url + erp_profiles.HEALTH_PATH, timeout=(2, 2))
    except (requests.RequestException, outbound_url.OutboundRefused) as exc:
        return False, outbound_url.failure_text(exc)
    return reply.status_code == 200, f"HTTP {reply.status_code}"


def health(*, details: bool = True) -> dict:
    """What /internal/erp/health reports: ok when every enabled profile is reachable, unpaused and closed.

    Without `details` only aggregates: no profile names, tenant slugs or pause reasons (issue 11).
    """
    profiles = list(IntegrationProfile.objects.filter(enabled=True).select_related("tenant"))
    report_profiles = []
    ok = True
    for profile in profiles:
        reachable, detail = erp_reachable(profile)
        breaker = erp_profiles.breaker(profile).state()
        healthy = reachable and breaker.state == "closed" and not profile.is_paused
        ok = ok and healthy
        report_profiles.append(
            {
                "name": profile.name,
                "tenant": profile.tenant.slug if profile.tenant else None,
                "ok": healthy,
                "reachable": reachable,
                "detail": detail,
                "paused": profile.is_paused,
                "pause_reason": profile.pause_reason,
                "breaker": breaker.as_dict(),
            }
        )
    last_acked = ErpSync.objects.filter(direction=Direction.OUTBOUND).aggregate(last=Max("acked_at"))["last"]
    worst_breaker = "closed"
    for p in report_profiles:
        if p["breaker"]["state"] != "closed":
            worst_breaker = p["breaker"]["state"]
    report = {
        "ok": ok and bool(profiles),
        "last_acked_at": last_acked.isoformat() if last_acked else None,
        "failure_rate": failure_rate(),
        "breaker": worst_breaker,
        **{f"{k}_depth": v for k, v in depths().items()},
        "outbox_lag_seconds": round(outbox_lag(), 3),
        "profiles_total": len(report_profiles),
        "profiles_unhealthy": sum(1 for p in report_profiles if not p["ok"]),
    }
    if details:
        report["profiles"] = report_profiles
    return report


def dead_letters_for_replay(*, sync_ids=None, since=None, until=None, error_class=None, cause=None, user=None):
    """Open DLQ entries matching every given filter, of the tenants `user` may work on (None: all)."""
    entries = ErpOutboundDeadLetter.objects.filter(closed_at__isnull=True).select_related("sync")
    if sync_ids is not None:
        entries = entries.filter(sync_id__in=sync_ids)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    if error_class:
        entries = entries.filter(error_class=error_class)
    if cause:
        entries = entries.filter(cause=cause)
    if user is not None:
        entries = scope_to_tenants(entries, user, tenant_field="sync__tenant")
    return entries.order_by("created_at")


def sync_rows_waiting(profile) -> int:
    return ErpSync.objects.filter(profile=profile, direction=Direction.OUTBOUND, status=SyncStatus.QUEUED).count()


def latest_acked_seqs(job_ids) -> dict:
    """{job id: the highest seq of its acknowledged outbound messages} for `job_ids`."""
    if not job_ids:
        return {}
    rows = (
        ErpSync.objects.filter(direction=Direction.OUTBOUND, job_id__in=job_ids, status=SyncStatus.ACKED)
        .values("job_id")
        .annotate(latest=Max("seq"))
    )
    return {r["job_id"]: r["latest"] for r in rows}


def superseded_dead_letter_q():
    """Dead letters whose job has a later message acknowledged already (a replay would regress the job)."""
    later_acked = ErpSync.objects.filter(
        direction=Direction.OUTBOUND,
        job_id=OuterRef("sync__job_id"),
        seq__gt=OuterRef("sync__seq"),
        status=SyncStatus.ACKED,
    )
    return Q(Exists(later_acked))
