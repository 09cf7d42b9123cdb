"""Reads of the observability app: per-tenant SLA figures from the stored request statistics, breaker states."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .constants import BUCKET_COLUMNS, LATENCY_BUCKETS, WINDOWS
from .models import RequestStat

QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_SUMMED = ("requests", "errors", "client_errors", "duration_ms_sum", *BUCKET_COLUMNS)


def visible_stats(user):
    """Statistics of the tenants `user` works on; those of no single tenant only for those who see all tenants."""
    from apps.accounts.selectors import sees_all_tenants, tenants_for

    queryset = RequestStat.objects.all()
    if sees_all_tenants(user):
        return queryset
    return queryset.filter(tenant_key__in=list(tenants_for(user).values_list("pk", flat=True)))


def quantile_seconds(q: float, counts: list[int]) -> float | None:
    """Prometheus's histogram_quantile on one histogram: linear within the bucket the rank falls in.

    A rank in the open last bucket (above 60 s) answers the last finite bound, as Prometheus does."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    cumulative = 0
    for i, count in enumerate(counts):
        if cumulative + count >= rank and count:
            if i >= len(LATENCY_BUCKETS):
                return LATENCY_BUCKETS[-1]
            lower = LATENCY_BUCKETS[i - 1] if i else 0.0
            return lower + (LATENCY_BUCKETS[i] - lower) * (rank - cumulative) / count
        cumulative += count
    return LATENCY_BUCKETS[-1]


def figures(sums: dict, window_seconds: int) -> dict:
    """SLA figures of summed statistics: availability and error rate count 5xx answers as failures."""
    requests = sums.get("requests") or 0
    errors = sums.get("errors") or 0
    counts = [sums.get(c) or 0 for c in BUCKET_COLUMNS]
    latency = {name: quantile_seconds(q, counts) for name, q in QUANTILES}
    return {
        "requests": requests,
        "server_errors": errors,
        "client_errors": sums.get("client_errors") or 0,
        "error_rate": round(errors / requests, 6) if requests else None,
        "availability": round(1 - errors / requests, 6) if requests else None,
        "throughput_rps": round(requests / window_seconds, 6),
        "latency_ms": {
            **{name: round(value * 1000, 2) if value is not None else None for name, value in latency.items()},
            "mean": round((sums.get("duration_ms_sum") or 0) / requests, 2) if requests else None,
        },
    }


def window_bounds(window: str, *, now=None) -> tuple[datetime, datetime]:
    """[start, end) of a rolling window, start floored to a bucket boundary (whole buckets are summed)."""
    end = now or timezone.now()
    start = end - timedelta(seconds=WINDOWS[window])
    size = settings.OBSERVABILITY_STATS_BUCKET_SECONDS
    floored = int(start.timestamp() // size) * size
    return datetime.fromtimestamp(floored, tz=UTC), end


def sla(user, *, window: str = "day", tenant=None, view: str | None = None, now=None) -> dict:
    """Per-tenant and aggregate SLA figures over the window, from the statistics `user` may see."""
    from apps.accounts.models import Tenant

    start, end = window_bounds(window, now=now)
    seconds = WINDOWS[window]
    queryset = visible_stats(user).filter(bucket__gte=start, bucket__lt=end)
    if tenant is not None:
        queryset = queryset.filter(tenant_key=tenant.pk)
    if view:
        queryset = queryset.filter(view=view)
    grouped = list(queryset.values("tenant_key").annotate(**{c: Sum(c) for c in _SUMMED}).order_by("tenant_key"))
    names = {t.pk: t for t in Tenant.objects.filter(pk__in=[g["tenant_key"] for g in grouped if g["tenant_key"]])}
    total = {c: sum(g[c] or 0 for g in grouped) for c in _SUMMED}
    tenants = []
    for group in grouped:
        found = names.get(group["tenant_key"])
        label = {"id": found.pk, "slug": found.slug, "name": found.name} if found else None
        if group["tenant_key"] and not found:
            label = {"id": group["tenant_key"], "slug": None, "name": None}
        tenants.append({"tenant": label, **figures(group, seconds)})
    return {
        "window": window,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "bucket_seconds": settings.OBSERVABILITY_STATS_BUCKET_SECONDS,
        "aggregate": figures(total, seconds),
        "tenants": tenants,
    }


def circuit_breakers() -> list[dict]:
    """Every circuit breaker known to core.circuit_breaker (constructed here, or listed by a registered source)."""
    from apps.core import circuit_breaker

    return [{"name": name, **state.as_dict()} for name, state in sorted(circuit_breaker.all_states().items())]
