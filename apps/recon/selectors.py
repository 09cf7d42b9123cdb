"""Recon reads: tenant-scoped breaks, runs and files, the break queue's filters, and age buckets."""

import datetime as dt

from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils import timezone

from apps.accounts.selectors import scope_to_tenants

from .constants import AGE_BUCKETS
from .models import Break, BreakState, ReconFile, ReconRun

OPEN_STATES = (BreakState.OPEN,)


def breaks_for(user):
    return scope_to_tenants(Break.objects.all(), user)


def runs_for(user):
    return scope_to_tenants(ReconRun.objects.all(), user)


def files_for(user):
    return scope_to_tenants(ReconFile.objects.all(), user)


def _bucket_bounds(label, now):
    """first_seen_at bounds of a bucket: ages in whole days from `low` to `high` (inclusive)."""
    for name, low, high in AGE_BUCKETS:
        if name == label:
            newest = now - dt.timedelta(days=low)
            oldest = None if high is None else now - dt.timedelta(days=high + 1)
            return oldest, newest
    raise KeyError(label)


def bucket_of(first_seen_at, now=None) -> str:
    days = ((now or timezone.now()) - first_seen_at).days
    for name, low, high in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return name
    return AGE_BUCKETS[0][0]


def annotate_bucket(queryset, now=None):
    now = now or timezone.now()
    whens = []
    for name, _low, high in AGE_BUCKETS:
        if high is not None:
            whens.append(When(first_seen_at__gt=now - dt.timedelta(days=high + 1), then=Value(name)))
    return queryset.annotate(age_bucket=Case(*whens, default=Value(AGE_BUCKETS[-1][0]), output_field=CharField()))


def sla_state(bucket: str, sla_days: int) -> str:
    """ "ok" when the whole bucket is inside the SLA, "due" when the SLA ends in it, "breached" after."""
    for name, low, high in AGE_BUCKETS:
        if name == bucket:
            if high is not None and high < sla_days:
                return "ok"
            if low <= sla_days:
                return "due"
            return "breached"
    return "ok"


def queue(user, filters: dict, *, now=None):
    """The break queue of `user`'s tenants with the panel's filters (already validated)."""
    now = now or timezone.now()
    queryset = breaks_for(user).select_related("tenant", "profile", "assignee")
    states = filters.get("state") or [BreakState.OPEN]
    queryset = queryset.filter(state__in=states)
    if filters.get("kind"):
        queryset = queryset.filter(kind__in=filters["kind"])
    if filters.get("tenant"):
        queryset = queryset.filter(tenant__slug=filters["tenant"])
    assignee = filters.get("assignee")
    if assignee == "me":
        queryset = queryset.filter(assignee=user)
    elif assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif assignee:
        queryset = queryset.filter(assignee__username=assignee)
    if filters.get("bucket"):
        condition = Q()
        for label in filters["bucket"]:
            oldest, newest = _bucket_bounds(label, now)
            part = Q(first_seen_at__lte=newest)
            if oldest is not None:
                part &= Q(first_seen_at__gt=oldest)
            condition |= part
        queryset = queryset.filter(condition)
    if filters.get("q"):
        queryset = queryset.filter(Q(key__icontains=filters["q"]) | Q(external_id__icontains=filters["q"]))
    return queryset.order_by("first_seen_at", "id")


def open_bucket_counts(*, now=None) -> dict[str, int]:
    """Open breaks of every tenant per age bucket, every bucket present (0 when empty): the /metrics gauge."""
    from .models import Break

    rows = (
        annotate_bucket(Break.objects.filter(state__in=OPEN_STATES), now).values("age_bucket").annotate(n=Count("id"))
    )
    found = {row["age_bucket"]: row["n"] for row in rows}
    return {name: found.get(name, 0) for name, _low, _high in AGE_BUCKETS}


def bucket_counts(user, *, now=None) -> dict[str, int]:
    """Open breaks of the user's tenants per age bucket."""
    rows = (
        annotate_bucket(breaks_for(user).filter(state__in=OPEN_STATES), now)
        .values("age_bucket")
        .annotate(n=Count("id"))
    )
    counts = {name: 0 for name, _l, _h in AGE_BUCKETS}
    for row in rows:
        counts[row["age_bucket"]] = row["n"]
    return counts
