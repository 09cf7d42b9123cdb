"""Report reads: filtered jobs of the user's tenants, the summary's aggregates, detail pages and export rows.

Percentiles use the nearest-rank definition on persisted `duration_ms` (jobs with a duration only):
P = the value at 1-based rank ceil(p/100 * n) of the ascending durations. PostgreSQL computes it with
percentile_disc, SQLite with ORDER BY ... OFFSET; both get the rank from exact integer arithmetic, so
the two databases return the same value for the same rows.
"""

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, BigIntegerField, Case, Count, IntegerField, Max, Q, Value, When
from django.db.models.functions import TruncDate

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


CATALOG_FILTERS = ("model_type", "machine", "post")
MINUTE_MS = 60_000


def use_rollup() -> bool:
    """Read the rollups (the default) or scan jobs_job as before (REPORTING_ROLLUP=false, bench_reporting's
    "before" runs); both give the same numbers (tests/reporting/test_rollup.py)."""
    return settings.REPORTING_ROLLUP


def _tenant_ids(user):
    return None if sees_all_tenants(user) else list(tenants_for(user).values_list("pk", flat=True))


@dataclass
class Scope:
    """The jobs report_jobs(user, filters) selects, with the user's tenants and the filters' codes resolved to
    ids once per request (a few small queries), for the rollup reads and the percentiles' one-minute reads."""

    filters: dict
    tenant_ids: list | None  # the user's tenants; None: all (superuser)
    tenant: list | None  # the `tenant` filter's id ([] when the slug matches none)
    catalog: dict  # model_type / machine / post -> ids of the code's rows

    @classmethod
    def of(cls, user, filters):
        tenant = None
        if filters.get("tenant"):
            tenant = list(Tenant.objects.filter(slug=filters["tenant"]).values_list("pk", flat=True)[:1])
        catalog = {
            name: list(model.objects.filter(code=filters[name]).values_list("pk", flat=True))
            for name, model in zip(CATALOG_FILTERS, (ModelType, Machine, Post), strict=True)
            if filters.get(name)
        }
        return cls(filters, _tenant_ids(user), tenant, catalog)

    @property
    def by_catalog(self) -> bool:
        return bool(self.catalog)

    def conditions(self):
        """SQL conditions (ANDed) and their parameters on a rollup table's tenant, status and catalog columns."""
        where, params = [], []

        def within(column, values):
            if not values:
                where.append("1 = 0")
                return
            where.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)

        if self.tenant_ids is not None:
            within("tenant_id", self.tenant_ids)
        if self.tenant is not None:
            within("tenant_id", self.tenant)
        if self.filters.get("status"):
            within("status", list(self.filters["status"]))
        for name, ids in self.catalog.items():
            within(f"{name}_id", ids)
        return where, params

    def jobs(self):
        """jobs_job rows of this scope: report_jobs(user, filters) with the ids already resolved."""
        qs = Job.objects.all() if self.tenant_ids is None else Job.objects.filter(tenant_id__in=self.tenant_ids)
        if self.filters.get("date_from"):
            qs = qs.filter(created_at__gte=_day_start(self.filters["date_from"]))
        if self.filters.get("date_to"):
            qs = qs.filter(created_at__lt=_day_start(self.filters["date_to"] + dt.timedelta(days=1)))
        if self.filters.get("status"):
            qs = qs.filter(status__in=self.filters["status"])
        if self.tenant is not None:
            qs = qs.filter(tenant_id__in=self.tenant)
        for name, ids in self.catalog.items():
            qs = qs.filter(**{f"{name}_id__in": ids})
        return qs.order_by()


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _segments(filters, month_table, day_table):
    """[(table, period column, [(operator, date)])]: the whole calendar months of the date range from the month
    level, the days before the first and after the last whole month from the day level. Dates are Istanbul days
    on both levels, so the union counts every job of the range once."""
    lo, hi = filters.get("date_from"), filters.get("date_to")
    try:
        first = None if lo is None else (lo if lo.day == 1 else _next_month(lo))  # first whole month
        after = None  # the day after the last whole month
        if hi is not None:
            after = _next_month(hi) if _next_month(hi) - dt.timedelta(days=1) == hi else hi.replace(day=1)
    except OverflowError:  # December of year 9999 has no next month: the day level alone answers
        return _days(filters, day_table)
    if first is not None and after is not None and first >= after:
        return [(day_table, "day", [(">=", lo), ("<=", hi)])]
    months = [(op, d) for op, d in ((">=", first), ("<", after)) if d is not None]
    segments = [(month_table, "month", months)]
    if lo is not None and lo < first:
        segments.append((day_table, "day", [(">=", lo), ("<", first)]))
    if hi is not None and after <= hi:
        segments.append((day_table, "day", [(">=", after), ("<=", hi)]))
    return segments


def _days(filters, table):
    bounds = [(op, filters.get(k)) for op, k in ((">=", "date_from"), ("<=", "date_to")) if filters.get(k)]
    return [(table, "day", bounds)]


OUTCOME_SUMS = {
    "n": "SUM(jobs)",
    "with_duration": "SUM(with_duration)",
    "success": f"SUM(CASE WHEN status = '{JobStatus.SUCCEEDED.value}' THEN jobs ELSE 0 END)",
    "failed": f"SUM(CASE WHEN status = '{JobStatus.FAILED.value}' THEN jobs ELSE 0 END)",
}


def _union(scope, segments, columns):
    """SQL (and parameters) of the rollup rows of `scope` over `segments`, UNION ALL, with `columns`."""
    where, params = scope.conditions()
    parts, all_params = [], []
    for table, period, bounds in segments:
        conditions = ["jobs > 0", *(f"{period} {op} %s" for op, _ in bounds), *where]
        parts.append(f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(conditions)}")  # noqa: S608
        all_params += [connection.ops.adapt_datefield_value(d) for _, d in bounds] + params
    return " UNION ALL ".join(parts), all_params


def _fetch(sql, params, names):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _rollup_sums(scope, segments, group, sums, columns):
    """One query over the rollup segments (UNION ALL), grouped by `group`: a list of dicts of group and sums.
    `columns`: the table columns the sums read. Sums are cast to integers (PostgreSQL's SUM(bigint) is numeric,
    which psycopg turns into Decimals)."""
    union, params = _union(scope, segments, list(dict.fromkeys([*group, *columns])))
    aggregates = ", ".join(f"CAST(COALESCE({sql}, 0) AS BIGINT) AS {name}" for name, sql in sums.items())
    sql = f"SELECT {', '.join([*group, aggregates])} FROM ({union}) r"  # noqa: S608
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    return _fetch(sql, params, [*group, *sums])


def _counts_grain(scope, dims):
    from . import rollup

    segments = _segments(scope.filters, rollup.MONTH_COUNTS, rollup.COUNTS)
    return _rollup_sums(scope, segments, list(dims), OUTCOME_SUMS, ["status", "jobs", "with_duration"])


# Catalog filters the duration rollups answer, over whole months only (the post-month level has no days).
POST_MONTH_FILTERS = {"machine", "post"}


def _duration_segments(scope):
    """Where the scope's durations are counted: month and edge-day duration rollups without a catalog filter;
    the post-month level with a machine or post filter when the range is whole months (or none); None (scan
    the jobs) otherwise: a model type filter, or a catalog filter with edge days."""
    from . import rollup

    segments = _segments(scope.filters, rollup.MONTH_DURATIONS, rollup.DURATIONS)
    if not scope.by_catalog:
        return segments
    if set(scope.catalog) - POST_MONTH_FILTERS or any(period != "month" for _t, period, _b in segments):
        return None
    return [(rollup.POST_MONTH_DURATIONS, period, bounds) for _t, period, bounds in segments]


def _rank_minutes(scope, segments, ranks) -> dict:
    """{rank: (minute, below, count)}: the duration bucket holding each 1-based rank, how many durations are in
    earlier buckets and how many in it; the running count is summed in the database, so only these rows come
    back."""
    union, params = _union(scope, segments, ["duration_minute", "jobs"])
    holds = " OR ".join(["(upto >= %s AND upto - n < %s)"] * len(ranks))
    sql = (
        "SELECT duration_minute, CAST(upto - n AS BIGINT), CAST(upto AS BIGINT) FROM ("  # noqa: S608
        "SELECT duration_minute, n, SUM(n) OVER (ORDER BY duration_minute ROWS UNBOUNDED PRECEDING) AS upto FROM ("
        # SUM of an integer is a bigint on PostgreSQL (of a bigint, a numeric: twice as slow to add up).
        f"SELECT duration_minute, SUM(CAST(jobs AS INTEGER)) AS n FROM ({union}) r GROUP BY duration_minute) m) c "
        f"WHERE {holds}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + [r for rank in ranks for r in (rank, rank)])
        rows = cursor.fetchall()
    return {rank: (m, below, upto - below) for rank in ranks for m, below, upto in rows if below < rank <= upto}


def _rollup_histogram(scope, segments) -> list:
    """Jobs per LATENCY_BUCKETS_MS bucket from the duration rollups (every bound is a whole minute)."""
    whens = " ".join(f"WHEN duration_minute < {b // MINUTE_MS} THEN {i}" for i, b in enumerate(LATENCY_BUCKETS_MS))
    union, params = _union(scope, segments, ["duration_minute", "jobs"])
    sql = (
        f"SELECT bucket, CAST(SUM(CAST(jobs AS INTEGER)) AS BIGINT) FROM ("  # noqa: S608
        f"SELECT CASE {whens} ELSE {len(LATENCY_BUCKETS_MS)} END "
        f"AS bucket, jobs FROM ({union}) r) b GROUP BY bucket"
    )
    counts = {r["bucket"]: r["n"] for r in _fetch(sql, params, ["bucket", "n"])}
    return [{"bucket": i, "count": counts.get(i, 0)} for i in range(len(LATENCY_BUCKETS_MS) + 1)]


def rollup_percentiles(scope, n: int) -> dict | None:
    """Exact nearest-rank P50/P95 (ms): the rollup says which minute holds each rank and how many shorter
    durations there are; only that minute's jobs are then read from jobs_job. None: the rollup cannot say
    (a catalog filter: the duration rollups have no catalog columns)."""
    keys = [f"p{p}" for p in PERCENTILES]
    if n == 0:
        return dict.fromkeys(keys)
    segments = _duration_segments(scope)
    if segments is None:
        return None
    from . import rollup

    ranks = [nearest_rank(p, n) for p in PERCENTILES]
    located = _rank_minutes(scope, segments, sorted(set(ranks)))
    result = {}
    for key, rank in zip(keys, ranks, strict=True):
        minute, below, count = located[rank]
        low, high = rollup.bucket_span_ms(minute)
        in_bucket = (
            scope.jobs().filter(duration_ms__gte=low, duration_ms__lt=high).values_list("duration_ms", flat=True)
        )
        # The rollup is exact, so the bucket holds `count` of these jobs: walk the index from its nearer end.
        position = rank - below - 1
        if position < count // 2:
            result[key] = in_bucket.order_by("duration_ms")[position]
        else:
            result[key] = in_bucket.order_by("-duration_ms")[count - 1 - position]
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
    rollup = use_rollup()
    # One scan grouped at the finest grain the breakdowns need (post implies machine); rolled up here.
    if rollup:
        qs = Scope.of(user, filters)
        grain = _counts_grain(qs, ("status", "model_type_id", "machine_id", "post_id"))
    else:
        qs = report_jobs(user, filters)
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
            **_percentiles(filters, qs, n_durations),
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
    if use_rollup():
        from . import rollup

        qs = Scope.of(user, filters)
        # Without a catalog filter the (day, tenant, status) level answers: a few rows a day.
        segments = (
            _segments(filters, rollup.MONTH_COUNTS, rollup.COUNTS)
            if qs.by_catalog
            else _days(filters, rollup.DAY_STATUS)
        )
        (row,) = _rollup_sums(qs, segments, [], OUTCOME_SUMS, ["status", "jobs", "with_duration"])
        counts = {"count": row["n"], "success": row["success"], "failed": row["failed"], "n": row["with_duration"]}
    else:
        qs = report_jobs(user, filters)
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
        "latency_ms": {**_percentiles(filters, qs, n), "n": n},
    }


def _percentiles(filters, qs, n) -> dict:
    """From the rollups when `qs` is a Scope (and its filters allow), else from the jobs' durations."""
    if isinstance(qs, Scope):
        found = rollup_percentiles(qs, n)
        if found is not None:
            return found
        qs = qs.jobs()
    return duration_percentiles(qs, n, only_tenant_filter=not (set(filters) - {"tenant"}))


def report_breakdowns(user, filters: dict) -> dict:
    """The panel's status donut and stacked bars (status per machine and per post code), from one grouped scan."""
    if use_rollup():
        grain = _counts_grain(Scope.of(user, filters), ("status", "machine_id", "post_id"))
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
    """trend_and_histogram from the rollups: days from the (day, tenant, status) level (the full daily rollup
    with a catalog filter), buckets from the duration rollups (every LATENCY_BUCKETS_MS bound is a bucket
    bound). None: filters the duration rollups cannot answer (_duration_segments)."""
    from . import rollup

    scope = Scope.of(user, filters)
    durations = _duration_segments(scope)
    if durations is None:
        return None
    # With a catalog filter the days come from the full daily rollup, which has the catalog columns.
    days = _days(filters, rollup.COUNTS if scope.by_catalog else rollup.DAY_STATUS)
    rows = _rollup_sums(scope, days, ["day"], OUTCOME_SUMS, ["status", "jobs", "with_duration"])
    for r in rows:
        r["day"] = r["day"] if isinstance(r["day"], dt.date) else dt.date.fromisoformat(r["day"])
    trend = [
        {"day": r["day"].isoformat(), "count": r["n"], "success": r["success"], "failed": r["failed"]}
        for r in sorted(rows, key=lambda r: r["day"])
    ]
    return trend, _rollup_histogram(scope, durations)


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
