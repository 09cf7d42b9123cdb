"""Report reads: filtered jobs of the user's tenants, the summary's aggregates, detail pages and export rows.

Percentiles use the nearest-rank definition on persisted `duration_ms` (jobs with a duration only):
P = the value at 1-based rank ceil(p/100 * n) of the ascending durations. PostgreSQL computes it with
percentile_disc, SQLite with ORDER BY ... OFFSET; both get the rank from exact integer arithmetic, so
the two databases return the same value for the same rows.
"""

import datetime as dt
import zoneinfo
from collections import defaultdict

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, BigIntegerField, Case, Count, IntegerField, Max, Q, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate

from apps.accounts.models import Tenant
from apps.accounts.selectors import sees_all_tenants, tenants_for
from apps.catalog.models import Machine, ModelType, Post
from apps.jobs.models import Job, JobStatus

REPORT_TZ = zoneinfo.ZoneInfo("Europe/Istanbul")
PERCENTILES = (50, 95)
# Latency histogram bucket upper bounds in ms (the last bucket is open-ended), for the dashboard.
LATENCY_BUCKETS_MS = [60_000, 5 * 60_000, 15 * 60_000, 30 * 60_000, 60 * 60_000, 120 * 60_000]


class _PercentilesDisc(Aggregate):
    """PostgreSQL's percentile_disc over an array of fractions: one sort, several percentiles."""

    function = "percentile_disc"
    template = "%(function)s(%(fractions)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fractions, **extra):
        literal = "ARRAY[" + ",".join(repr(float(f)) for f in fractions) + "]::float8[]"
        from django.contrib.postgres.fields import ArrayField

        super().__init__(expression, fractions=literal, output_field=ArrayField(BigIntegerField()), **extra)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=REPORT_TZ)


def apply_filters(qs, filters: dict):
    """Narrow a Job queryset by validated report filters (see ReportFilterSerializer)."""
    if filters.get("date_from"):
        qs = qs.filter(created_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        qs = qs.filter(created_at__lt=_day_start(filters["date_to"] + dt.timedelta(days=1)))
    if filters.get("status"):
        qs = qs.filter(status__in=filters["status"])
    if filters.get("tenant"):
        qs = qs.filter(tenant_id__in=Tenant.objects.filter(slug=filters["tenant"]).values_list("pk", flat=True)[:1])
    for name, model in (("model_type", ModelType), ("machine", Machine), ("post", Post)):
        if filters.get(name):
            # Codes repeat across tenants; their ids (a handful) go in as a literal list, which PostgreSQL
            # estimates from its statistics, where a join to the catalog made it pick a bitmap scan per code.
            ids = list(model.objects.filter(code=filters[name]).values_list("pk", flat=True))
            qs = qs.filter(**{f"{name}_id__in": ids})
    return qs


def report_jobs(user, filters: dict):
    """Jobs of the tenants `user` may work on, narrowed by `filters`; no ordering (aggregates add none)."""
    if sees_all_tenants(user):
        jobs = Job.objects.all()
    else:
        # The few tenant ids first, then `tenant_id IN (...)`: scope_to_tenants' per-row EXISTS costs
        # seconds over a million jobs, while an IN list lets PostgreSQL use the tenant indexes.
        jobs = Job.objects.filter(tenant_id__in=list(tenants_for(user).values_list("pk", flat=True)))
    return apply_filters(jobs, filters).order_by()


# Filters the duration rollup (day, tenant, status, minute) can answer; the others read jobs_job for durations.
DURATION_ROLLUP_FILTERS = {"date_from", "date_to", "status", "tenant"}
MINUTE_MS = 60_000


def use_rollup() -> bool:
    """Read the rollups (the default) or scan jobs_job as before (REPORTING_ROLLUP=false, bench_reporting's
    "before" runs); both give the same numbers (tests/reporting/test_rollup.py)."""
    return settings.REPORTING_ROLLUP


def _tenant_ids(user):
    return None if sees_all_tenants(user) else list(tenants_for(user).values_list("pk", flat=True))


def rollup_rows(model, user, filters: dict):
    """The rollup rows (JobRollup or JobDurationRollup) of the jobs report_jobs(user, filters) selects.

    Filters a model lacks (the duration rollup has no catalog columns) must be checked by the caller.
    """
    qs = model.objects.filter(jobs__gt=0)
    tenant_ids = _tenant_ids(user)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    if filters.get("date_from"):
        qs = qs.filter(day__gte=filters["date_from"])
    if filters.get("date_to"):
        qs = qs.filter(day__lte=filters["date_to"])
    if filters.get("status"):
        qs = qs.filter(status__in=filters["status"])
    if filters.get("tenant"):
        qs = qs.filter(
            tenant_id__in=list(Tenant.objects.filter(slug=filters["tenant"]).values_list("pk", flat=True)[:1])
        )
    for name, catalog in (("model_type", ModelType), ("machine", Machine), ("post", Post)):
        if filters.get(name):
            qs = qs.filter(
                **{f"{name}_id__in": list(catalog.objects.filter(code=filters[name]).values_list("pk", flat=True))}
            )
    return qs.order_by()


def _counts_grain(user, filters, dims):
    from .models import JobRollup

    return list(
        rollup_rows(JobRollup, user, filters).values(*dims).annotate(n=Sum("jobs"), with_duration=Sum("with_duration"))
    )


def _minute_counts(user, filters) -> list[tuple[int, int]] | None:
    """[(minute, jobs)] ascending from the duration rollup, or None when a filter needs the catalog columns."""
    from .models import JobDurationRollup

    if set(k for k, v in filters.items() if v) - DURATION_ROLLUP_FILTERS:
        return None
    rows = rollup_rows(JobDurationRollup, user, filters).values("duration_minute").annotate(n=Sum("jobs"))
    return sorted((r["duration_minute"], r["n"]) for r in rows)


def rollup_percentiles(user, filters: dict, n: int) -> dict | None:
    """Exact nearest-rank P50/P95 (ms): the rollup says which minute holds each rank and how many shorter
    durations there are; only that minute's jobs are then read from jobs_job. None: the rollup cannot say."""
    keys = [f"p{p}" for p in PERCENTILES]
    if n == 0:
        return dict.fromkeys(keys)
    minutes = _minute_counts(user, filters)
    if minutes is None:
        return None
    result, below = {}, 0
    ranks = iter(zip(keys, (nearest_rank(p, n) for p in PERCENTILES), strict=True))
    key, rank = next(ranks)
    for minute, count in minutes:
        while key is not None and rank <= below + count:
            in_minute = (
                report_jobs(user, filters)
                .filter(duration_ms__gte=minute * MINUTE_MS, duration_ms__lt=(minute + 1) * MINUTE_MS)
                .order_by("duration_ms")
                .values_list("duration_ms", flat=True)
            )
            result[key] = in_minute[rank - below - 1]
            key, rank = next(ranks, (None, None))
        below += count
    return result


def nearest_rank(p: int, n: int) -> int:
    """1-based rank of the p-th percentile among n values (exact integer ceil(p*n/100))."""
    return max(1, -(-p * n // 100))


def duration_percentiles(qs, n: int, *, only_tenant_filter: bool = False) -> dict:
    """{"p50": ms, "p95": ms} of the queryset's durations, n being how many have one (None when n is 0).

    `only_tenant_filter`: the queryset is narrowed by tenant alone, so walking the (duration_ms, tenant_id)
    index to each rank beats sorting every duration (docs/benchmarks.md); otherwise PostgreSQL sorts once
    with percentile_disc for all percentiles.
    """
    keys = [f"p{p}" for p in PERCENTILES]
    if n == 0:
        return dict.fromkeys(keys)
    ranks = [nearest_rank(p, n) for p in PERCENTILES]
    with_duration = qs.filter(duration_ms__isnull=False)
    if connection.vendor == "postgresql" and not only_tenant_filter:
        # percentile_disc picks rank ceil(f*n); f = (rank - 0.5)/n lands mid-rank, safe from float rounding.
        values = with_duration.aggregate(v=_PercentilesDisc("duration_ms", [(r - 0.5) / n for r in ranks]))["v"]
        return {k: int(v) for k, v in zip(keys, values, strict=True)}
    ordered = with_duration.order_by("duration_ms").values_list("duration_ms", flat=True)
    return {k: ordered[r - 1] for k, r in zip(keys, ranks, strict=True)}


def _rates(success: int, failed: int) -> dict:
    """Success and failure rates among jobs that ended succeeded or failed (cancelled ones have no outcome)."""
    decided = success + failed
    if not decided:
        return {"success_rate": None, "failure_rate": None}
    return {"success_rate": round(success / decided, 4), "failure_rate": round(failed / decided, 4)}


def _breakdown_rows(counter: dict, labels: dict) -> list:
    rows = []
    for key, c in counter.items():
        row = {**labels.get(key, {"code": str(key), "name": str(key)}), "count": c["count"]}
        row.update(success=c["success"], failed=c["failed"], **_rates(c["success"], c["failed"]))
        rows.append(row)
    # Ties (the same code in two tenants) by tenant and id, so the raw scan and the rollups list them alike.
    return sorted(rows, key=lambda r: (-r["count"], r["code"], str(r.get("tenant") or ""), r.get("id") or 0))


def _catalog_labels(model, ids) -> dict:
    return {
        pk: {"id": pk, "code": code, "name": name, "tenant": slug}
        for pk, code, name, slug in model.objects.filter(pk__in=ids).values_list("pk", "code", "name", "tenant__slug")
    }


def report_summary(user, filters: dict, *, with_stacks: bool = False) -> dict:
    """The summary API's body: totals, rates, P50/P95 and breakdowns, from one grouped scan plus the percentiles.

    `with_stacks` adds "stacks" for the dashboard's stacked bars (status counts per machine and per
    post code), from the same grouped rows with no further scan.
    """
    qs = report_jobs(user, filters)
    rollup = use_rollup()
    # One scan grouped at the finest grain the breakdowns need (post implies machine); rolled up here.
    if rollup:
        grain = _counts_grain(user, filters, ("status", "model_type_id", "machine_id", "post_id"))
    else:
        grain = list(
            qs.values("status", "model_type_id", "machine_id", "post_id").annotate(
                n=Count("id"), with_duration=Count("duration_ms")
            )
        )
    totals = {"count": 0, "success": 0, "failed": 0}
    n_durations = 0
    by = {dim: defaultdict(lambda: {"count": 0, "success": 0, "failed": 0}) for dim in ("status", "mt", "m", "p")}
    for g in grain:
        n, success, failed = g["n"], 0, 0
        if g["status"] == JobStatus.SUCCEEDED:
            success = n
        elif g["status"] == JobStatus.FAILED:
            failed = n
        totals["count"] += n
        totals["success"] += success
        totals["failed"] += failed
        n_durations += g["with_duration"]
        for dim, key in (
            ("status", g["status"]),
            ("mt", g["model_type_id"]),
            ("m", g["machine_id"]),
            ("p", g["post_id"]),
        ):
            bucket = by[dim][key]
            bucket["count"] += n
            bucket["success"] += success
            bucket["failed"] += failed
    status_labels = {s.value: {"code": s.value, "name": str(s.label)} for s in JobStatus}
    machines = _catalog_labels(Machine, by["m"].keys())
    posts = _catalog_labels(Post, by["p"].keys())
    summary = {
        "range": {
            "from": filters.get("date_from").isoformat() if filters.get("date_from") else None,
            "to": filters.get("date_to").isoformat() if filters.get("date_to") else None,
            "time_zone": str(REPORT_TZ),
        },
        "filters": {k: v for k, v in filters.items() if k not in ("date_from", "date_to")},
        "totals": totals,
        "rates": _rates(totals["success"], totals["failed"]),
        "latency_ms": {
            **_percentiles(user, filters, qs, n_durations, rollup),
            "n": n_durations,
            "definition": "nearest-rank",
        },
        "breakdowns": {
            "by_status": _breakdown_rows(by["status"], status_labels),
            "by_model_type": _breakdown_rows(by["mt"], _catalog_labels(ModelType, by["mt"].keys())),
            "by_machine": _breakdown_rows(by["m"], machines),
            "by_post": _breakdown_rows(by["p"], posts),
        },
    }
    if with_stacks:
        summary["stacks"] = {
            "machine": _status_stack(grain, "machine_id", machines),
            "post": _status_stack(grain, "post_id", posts),
        }
    return summary


def report_kpis(user, filters: dict) -> dict:
    """The panel's key figures alone: totals, rates and P50/P95, from one ungrouped count plus the percentiles."""
    qs = report_jobs(user, filters)
    rollup = use_rollup()
    if rollup:
        from .models import JobRollup

        counts = rollup_rows(JobRollup, user, filters).aggregate(
            count=Coalesce(Sum("jobs"), 0),
            success=Coalesce(Sum("jobs", filter=Q(status=JobStatus.SUCCEEDED)), 0),
            failed=Coalesce(Sum("jobs", filter=Q(status=JobStatus.FAILED)), 0),
            n=Coalesce(Sum("with_duration"), 0),
        )
    else:
        counts = qs.aggregate(
            count=Count("id"),
            success=Count("id", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            n=Count("duration_ms"),
        )
    n = counts.pop("n")
    return {
        "totals": counts,
        "rates": _rates(counts["success"], counts["failed"]),
        "latency_ms": {**_percentiles(user, filters, qs, n, rollup), "n": n},
    }


def _percentiles(user, filters, qs, n, rollup) -> dict:
    if rollup:
        found = rollup_percentiles(user, filters, n)
        if found is not None:
            return found
    return duration_percentiles(qs, n, only_tenant_filter=not (set(filters) - {"tenant"}))


def report_breakdowns(user, filters: dict) -> dict:
    """The panel's status donut and stacked bars (status per machine and per post code), from one grouped scan."""
    if use_rollup():
        grain = _counts_grain(user, filters, ("status", "machine_id", "post_id"))
    else:
        grain = list(report_jobs(user, filters).values("status", "machine_id", "post_id").annotate(n=Count("id")))
    by_status = defaultdict(int)
    for g in grain:
        by_status[g["status"]] += g["n"]
    statuses = sorted(
        ({"code": s.value, "name": str(s.label), "count": by_status[s.value]} for s in JobStatus if by_status[s.value]),
        key=lambda r: -r["count"],
    )
    machines = _catalog_labels(Machine, {g["machine_id"] for g in grain})
    posts = _catalog_labels(Post, {g["post_id"] for g in grain})
    return {
        "by_status": statuses,
        "by_machine": _status_stack(grain, "machine_id", machines),
        "by_post": _status_stack(grain, "post_id", posts),
    }


def _status_stack(grain, key, labels) -> dict:
    """{"categories": [codes], "series": {status: [counts]}} from grouped rows, codes sorted."""
    categories = sorted({labels[g[key]]["code"] for g in grain})
    index = {code: i for i, code in enumerate(categories)}
    series = {s.value: [0] * len(categories) for s in JobStatus}
    for g in grain:
        series[g["status"]][index[labels[g[key]]["code"]]] += g["n"]
    return {"categories": categories, "series": series}


def trend_and_histogram(user, filters: dict) -> tuple[list, list]:
    """The dashboard's jobs per Istanbul day (with successes and failures, oldest first) and jobs per
    duration bucket (LATENCY_BUCKETS_MS), from one scan grouped by (day, bucket): ~90 x 7 groups."""
    if use_rollup():
        rolled = _rollup_trend_and_histogram(user, filters)
        if rolled is not None:
            return rolled
    rows = (
        report_jobs(user, filters)
        .annotate(day=TruncDate("created_at", tzinfo=REPORT_TZ), bucket=_duration_bucket())
        .values("day", "bucket")
        .annotate(
            count=Count("id"),
            success=Count("id", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            with_duration=Count("duration_ms"),
        )
    )
    days = defaultdict(lambda: {"count": 0, "success": 0, "failed": 0})
    per_bucket = defaultdict(int)
    for r in rows:
        day = days[r["day"]]
        for key in ("count", "success", "failed"):
            day[key] += r[key]
        # Jobs without a duration land in the last bucket but add nothing to `with_duration`.
        per_bucket[r["bucket"]] += r["with_duration"]
    trend = [{"day": d.isoformat(), **days[d]} for d in sorted(days)]
    histogram = [{"bucket": i, "count": per_bucket[i]} for i in range(len(LATENCY_BUCKETS_MS) + 1)]
    return trend, histogram


def _rollup_trend_and_histogram(user, filters: dict):
    """trend_and_histogram from the rollups: days from the counts rollup, buckets from the duration rollup
    (every LATENCY_BUCKETS_MS bound is a whole minute, so a minute lies in one bucket). None: a catalog
    filter, which the duration rollup cannot answer."""
    from .models import JobRollup

    minutes = _minute_counts(user, filters)
    if minutes is None:
        return None
    rows = (
        rollup_rows(JobRollup, user, filters)
        .values("day")
        .annotate(
            count=Sum("jobs"),
            success=Coalesce(Sum("jobs", filter=Q(status=JobStatus.SUCCEEDED)), 0),
            failed=Coalesce(Sum("jobs", filter=Q(status=JobStatus.FAILED)), 0),
        )
    )
    trend = [
        {"day": r["day"].isoformat(), "count": r["count"], "success": r["success"], "failed": r["failed"]}
        for r in sorted(rows, key=lambda r: r["day"])
    ]
    per_bucket = defaultdict(int)
    bounds = [b // MINUTE_MS for b in LATENCY_BUCKETS_MS]
    for minute, count in minutes:
        per_bucket[next((i for i, b in enumerate(bounds) if minute < b), len(bounds))] += count
    histogram = [{"bucket": i, "count": per_bucket[i]} for i in range(len(LATENCY_BUCKETS_MS) + 1)]
    return trend, histogram


def _duration_bucket():
    """The index of a job's duration bucket (LATENCY_BUCKETS_MS; the last one is open-ended)."""
    whens = [When(duration_ms__lt=bound, then=Value(i)) for i, bound in enumerate(LATENCY_BUCKETS_MS)]
    return Case(*whens, default=Value(len(LATENCY_BUCKETS_MS)), output_field=IntegerField())


# Columns of a detail row and an exported row, read with values_list (no model instances: exports stream).
ROW_FIELDS = (
    "public_id",
    "external_id",
    "tenant__slug",
    "model_type__code",
    "machine__code",
    "post__code",
    "status",
    "progress",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
)
ROW_KEYS = (
    "id",
    "external_id",
    "tenant",
    "model_type",
    "machine",
    "post",
    "status",
    "progress",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
)


# An exported row: the detail row's columns, then the tenant's name (spreadsheets show it beside the code).
EXPORT_ROW_FIELDS = (*ROW_FIELDS, "tenant__name")


def _in_report_tz(value):
    return value.astimezone(REPORT_TZ) if isinstance(value, dt.datetime) else value


def snapshot_job_id() -> int:
    """The highest job id now: pages and exports bounded by it do not change when new jobs arrive."""
    return Job.objects.aggregate(m=Max("id"))["m"] or 0


def report_rows(user, filters: dict, *, as_of: int):
    """Report rows newest first (by id, which only grows), up to the snapshot `as_of`; a values_list queryset."""
    return report_jobs(user, filters).filter(id__lte=as_of).order_by("-id").values_list(*EXPORT_ROW_FIELDS)


def report_detail(user, filters: dict, *, page: int, limit: int, as_of: int | None) -> dict:
    """One page of the detail report: offset paging over a snapshot, so page N stays put while jobs arrive."""
    as_of = snapshot_job_id() if as_of is None else as_of
    start = (page - 1) * limit
    # Deferred join: skip `start` rows on jobs_job alone (an index-only scan when only the tenant narrows),
    # then join the catalog for just this page's rows.
    ids = list(
        report_jobs(user, filters)
        .filter(id__lte=as_of)
        .order_by("-id")
        .values_list("id", flat=True)[start : start + limit + 1]
    )
    page_rows = Job.objects.filter(id__in=ids[:limit]).order_by("-id").values_list(*ROW_FIELDS)
    rows = [dict(zip(ROW_KEYS, map(_in_report_tz, r), strict=True)) for r in page_rows]
    return {"page": page, "limit": limit, "as_of": as_of, "has_next": len(ids) > limit, "results": rows}


def exports_visible_to(user):
    """Exports `user` asked for, newest first: anybody else's export does not exist for them (404)."""
    from .models import ReportExport

    return ReportExport.objects.filter(requested_by_id=user.pk).order_by("-created_at")


def exports_in_admin_for(user):
    """Exports the admin lists for `user`: a superuser's every export, anybody else's own only (as the API).

    A tenant admin does not see its tenants' analysts' exports either: an export's filters, row count,
    sha256 and file name belong to whoever asked for it, and its rows may span tenants the admin lacks.
    """
    from apps.accounts.selectors import sees_all_tenants

    from .models import ReportExport

    if not user or not user.is_authenticated or not user.is_active:
        return ReportExport.objects.none()
    if sees_all_tenants(user):
        return ReportExport.objects.all()
    return exports_visible_to(user)
