"""The report rollups: job counts per (Istanbul day, tenant, status, model type, machine, post) and duration
counts per (Istanbul day, tenant, status, whole minute), each also per Istanbul calendar month, and job counts
per (day, tenant, status); all kept exact by database triggers on jobs_job.

Why triggers and not the write paths' Python: jobs change through change_status, update_job_references,
create_job, the admin, imports, connectors and plain queryset .update() calls; a trigger sees every one of
them (and deletes) in the writing transaction, so a committed job is in the rollup exactly once, whoever
wrote it. Bulk loads (seed_demo's COPY) pause the triggers and rebuild the rollups in one grouped pass.

A duration's bucket is its whole minute (duration_ms // 60000) below FINE_MINUTES, a COARSE_MINUTES-wide span
above (minute_bucket()).
"""

from contextlib import contextmanager

from django.db import connection as default_connection
from django.db import transaction

REPORT_TZ_NAME = "Europe/Istanbul"
COUNTS = "reporting_jobrollup"
DURATIONS = "reporting_jobdurationrollup"
MONTH_COUNTS = "reporting_jobmonthrollup"
DAY_STATUS = "reporting_jobdaystatusrollup"
MONTH_DURATIONS = "reporting_jobdurationmonthrollup"
POST_MONTH_DURATIONS = "reporting_jobdurationpostmonthrollup"
TABLES = (COUNTS, DURATIONS, MONTH_COUNTS, DAY_STATUS, MONTH_DURATIONS, POST_MONTH_DURATIONS)
# What the triggers of each migration kept (its migration runs the SQL of this module with them).
TABLES_0009 = (COUNTS, DURATIONS)
TABLES_0010 = (COUNTS, DURATIONS, MONTH_COUNTS, DAY_STATUS, MONTH_DURATIONS)
COUNT_KEY = ("day", "tenant_id", "status", "model_type_id", "machine_id", "post_id")
MONTH_COUNT_KEY = ("month", "tenant_id", "status", "model_type_id", "machine_id", "post_id")
DAY_STATUS_KEY = ("day", "tenant_id", "status")
DURATION_KEY = ("day", "tenant_id", "status", "duration_minute")
MONTH_DURATION_KEY = ("month", "tenant_id", "status", "duration_minute")
POST_MONTH_DURATION_KEY = ("machine_id", "post_id", "month", "tenant_id", "status", "duration_minute")
TRIGGERS = ("reporting_rollup_ins", "reporting_rollup_upd", "reporting_rollup_del")
# A job moves between rollup rows only when one of these changes (progress, event_seq ... do not count).
WATCHED = ("created_at", "tenant_id", "status", "model_type_id", "machine_id", "post_id", "duration_ms")


# Duration buckets: whole minutes below FINE_MINUTES (every histogram bound and nearly every percentile lies
# there), then COARSE_MINUTES-wide spans for the long tail (pauses of days), so a month of a tenant's durations
# is a few hundred rows instead of ten thousand. `duration_minute` holds the bucket's first minute.
FINE_MINUTES, COARSE_MINUTES = 240, 60


def minute_bucket(ms_sql):
    """SQL: the first minute of the bucket of the duration `ms_sql` (integer milliseconds, integer division)."""
    m = f"({ms_sql}) / 60000"
    tail = f"{FINE_MINUTES} + (({m} - {FINE_MINUTES}) / {COARSE_MINUTES}) * {COARSE_MINUTES}"
    return f"(CASE WHEN {m} < {FINE_MINUTES} THEN {m} ELSE {tail} END)"


def bucket_span_ms(minute):
    """[low, high) in ms of the duration bucket starting at `minute`."""
    width = 1 if minute < FINE_MINUTES else COARSE_MINUTES
    return minute * 60_000, (minute + width) * 60_000


def _day(vendor, ref):
    if vendor == "postgresql":
        return f"(({ref}.created_at AT TIME ZONE '{REPORT_TZ_NAME}')::date)"
    # Django registers this function on every SQLite connection; TruncDate(tzinfo=...) uses it too.
    return f"django_datetime_cast_date({ref}.created_at, '{REPORT_TZ_NAME}', 'UTC')"


def month_of(vendor, day_sql):
    """SQL: the first day of the month of the date `day_sql` (SQLite stores dates as 'YYYY-MM-DD' text)."""
    if vendor == "postgresql":
        return f"(date_trunc('month', ({day_sql})::timestamp)::date)"
    return f"(substr({day_sql}, 1, 8) || '01')"


def _upsert(table, key, values, sums, where="true"):
    """INSERT ... SELECT ... WHERE `where` ON CONFLICT DO UPDATE adding `sums` (column -> SQL) to the row of `key`."""
    columns = (*key, *sums)
    update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join((*values, *sums.values()))}"
        f" WHERE {where} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}"
    )


def _change_sql(vendor, ref, sign, tables=TABLES):
    """Statements adding `sign` (1 or -1) to the rows of `tables` for the job row `ref` (NEW or OLD)."""
    day = _day(vendor, ref)
    month = month_of(vendor, day)
    with_duration = f"CASE WHEN {ref}.duration_ms IS NULL THEN 0 ELSE {sign} END"
    catalog = (f"{ref}.status", f"{ref}.model_type_id", f"{ref}.machine_id", f"{ref}.post_id")
    counts = {"jobs": str(sign), "with_duration": with_duration}
    tenant_status = (f"{ref}.tenant_id", f"{ref}.status")
    bucket = minute_bucket(f"{ref}.duration_ms")

    def timed(table, key, *values):  # the duration levels: jobs with a duration only
        return _upsert(table, key, (*values, bucket), {"jobs": str(sign)}, where=f"{ref}.duration_ms IS NOT NULL")

    statements = {
        COUNTS: _upsert(COUNTS, COUNT_KEY, (day, f"{ref}.tenant_id", *catalog), counts),
        MONTH_COUNTS: _upsert(MONTH_COUNTS, MONTH_COUNT_KEY, (month, f"{ref}.tenant_id", *catalog), counts),
        DAY_STATUS: _upsert(DAY_STATUS, DAY_STATUS_KEY, (day, *tenant_status), counts),
        DURATIONS: timed(DURATIONS, DURATION_KEY, day, *tenant_status),
        MONTH_DURATIONS: timed(MONTH_DURATIONS, MONTH_DURATION_KEY, month, *tenant_status),
        POST_MONTH_DURATIONS: timed(
            POST_MONTH_DURATIONS, POST_MONTH_DURATION_KEY, f"{ref}.machine_id", f"{ref}.post_id", month, *tenant_status
        ),
    }
    return [statements[table] for table in TABLES if table in tables]


def _changed(vendor):
    op = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{c} {op} NEW.{c}" for c in WATCHED)


def create_triggers_sql(vendor, tables=TABLES) -> list[str]:
    if vendor == "postgresql":
        body = (
            "BEGIN\n"
            "IF TG_OP IN ('UPDATE', 'DELETE') THEN\n"
            + ";\n".join(_change_sql(vendor, "OLD", -1, tables))
            + ";\nEND IF;\nIF TG_OP IN ('UPDATE', 'INSERT') THEN\n"
            + ";\n".join(_change_sql(vendor, "NEW", 1, tables))
            + ";\nEND IF;\nRETURN NULL;\nEND"
        )
        columns = ", ".join(WATCHED)
        return [
            f"CREATE OR REPLACE FUNCTION reporting_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$",
            "CREATE TRIGGER reporting_rollup_ins AFTER INSERT ON jobs_job "
            "FOR EACH ROW EXECUTE FUNCTION reporting_rollup_apply()",
            f"CREATE TRIGGER reporting_rollup_upd AFTER UPDATE OF {columns} ON jobs_job FOR EACH ROW "
            f"WHEN ({_changed(vendor)}) EXECUTE FUNCTION reporting_rollup_apply()",
            "CREATE TRIGGER reporting_rollup_del AFTER DELETE ON jobs_job "
            "FOR EACH ROW EXECUTE FUNCTION reporting_rollup_apply()",
        ]
    # SQLite: one trigger per event; an upsert with SELECT needs `WHERE` before ON CONFLICT (it has one).
    new, old = _change_sql(vendor, "NEW", 1, tables), _change_sql(vendor, "OLD", -1, tables)
    return [
        f"CREATE TRIGGER reporting_rollup_ins AFTER INSERT ON jobs_job BEGIN {'; '.join(new)}; END",
        f"CREATE TRIGGER reporting_rollup_upd AFTER UPDATE ON jobs_job WHEN {_changed(vendor)} "
        f"BEGIN {'; '.join(old + new)}; END",
        f"CREATE TRIGGER reporting_rollup_del AFTER DELETE ON jobs_job BEGIN {'; '.join(old)}; END",
    ]


def drop_triggers_sql(vendor) -> list[str]:
    drops = [f"DROP TRIGGER IF EXISTS {name}" + (" ON jobs_job" if vendor == "postgresql" else "") for name in TRIGGERS]
    return drops + (["DROP FUNCTION IF EXISTS reporting_rollup_apply()"] if vendor == "postgresql" else [])


def rebuild_sql(vendor, tables=TABLES) -> list[str]:
    """Empty and refill `tables`: the two daily ones and the post-month durations from jobs_job in one grouped
    pass each, the month and day-status levels from the daily rows (a few hundred thousand rows, not the jobs;
    so they need the daily tables in `tables` too)."""
    day = _day(vendor, "jobs_job")
    month = month_of(vendor, "day")
    fill = {
        COUNTS: f"INSERT INTO {COUNTS} ({', '.join(COUNT_KEY)}, jobs, with_duration) "  # noqa: S608
        f"SELECT {day}, tenant_id, status, model_type_id, machine_id, post_id, count(*), count(duration_ms) "
        "FROM jobs_job GROUP BY 1, 2, 3, 4, 5, 6",
        DURATIONS: f"INSERT INTO {DURATIONS} ({', '.join(DURATION_KEY)}, jobs) "  # noqa: S608
        f"SELECT {day}, tenant_id, status, {minute_bucket('duration_ms')}, count(*) FROM jobs_job "
        "WHERE duration_ms IS NOT NULL GROUP BY 1, 2, 3, 4",
        MONTH_COUNTS: f"INSERT INTO {MONTH_COUNTS} ({', '.join(MONTH_COUNT_KEY)}, jobs, with_duration) "  # noqa: S608
        f"SELECT {month}, tenant_id, status, model_type_id, machine_id, post_id, sum(jobs), sum(with_duration) "
        f"FROM {COUNTS} GROUP BY 1, 2, 3, 4, 5, 6",
        DAY_STATUS: f"INSERT INTO {DAY_STATUS} ({', '.join(DAY_STATUS_KEY)}, jobs, with_duration) "  # noqa: S608
        f"SELECT day, tenant_id, status, sum(jobs), sum(with_duration) FROM {COUNTS} GROUP BY 1, 2, 3",
        MONTH_DURATIONS: f"INSERT INTO {MONTH_DURATIONS} ({', '.join(MONTH_DURATION_KEY)}, jobs) "  # noqa: S608
        f"SELECT {month}, tenant_id, status, duration_minute, sum(jobs) FROM {DURATIONS} GROUP BY 1, 2, 3, 4",
        # The only level with both a post and a duration: its own grouped pass over the jobs.
        POST_MONTH_DURATIONS: f"INSERT INTO {POST_MONTH_DURATIONS} ({', '.join(POST_MONTH_DURATION_KEY)}, jobs) "  # noqa: S608
        f"SELECT machine_id, post_id, {month_of(vendor, day)}, tenant_id, status, {minute_bucket('duration_ms')}, "
        "count(*) FROM jobs_job WHERE duration_ms IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6",
    }
    chosen = [table for table in TABLES if table in tables]
    return [f"DELETE FROM {table}" for table in chosen] + [fill[table] for table in chosen]  # noqa: S608


def _run(statements, connection=None):
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def rebuild(connection=None, tables=TABLES):
    """Empty and refill the rollups in one transaction: readers see the old rows or the new, never none."""
    connection = connection or default_connection
    with transaction.atomic(using=connection.alias):
        _run(rebuild_sql(connection.vendor, tables), connection)
    # Fresh statistics after a bulk load: without them SQLite walks the tenant index for the percentiles'
    # one-minute reads instead of the (duration_ms, tenant_id) index (0.2 s instead of 0.4 ms at 100k jobs).
    _run([f"ANALYZE {table}" for table in ("jobs_job", *tables)], connection)


@contextmanager
def paused(connection=None):
    """Bulk-load jobs without per-row trigger work, then rebuild the rollups (even if the load fails).

    Only for loads while nothing else writes jobs (seed_demo's rule): a job written by somebody else during
    the pause is still counted, by the rebuild, but only once the load ends.
    """
    connection = connection or default_connection
    _run(drop_triggers_sql(connection.vendor), connection)
    try:
        yield
    finally:
        with transaction.atomic(using=connection.alias):
            _run(create_triggers_sql(connection.vendor), connection)
            rebuild(connection)
