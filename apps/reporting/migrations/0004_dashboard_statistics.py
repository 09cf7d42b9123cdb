"""PostgreSQL statistics for the dashboard's trend and duration histogram on jobs_job.

The dashboard groups by the Istanbul calendar day of created_at and by the duration bucket (a CASE over
selectors.LATENCY_BUCKETS_MS; change both together). Without statistics on these expressions PostgreSQL
expects ~600 000 groups and aggregates a million rows in one process (0.74 s); knowing there are ~640
it hashes in parallel (0.39 s; docs/benchmarks.md).
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE STATISTICS IF NOT EXISTS reporting_jobs_day_bucket (ndistinct) "
            "ON ((created_at AT TIME ZONE 'Europe/Istanbul')::date), "
            "(CASE WHEN duration_ms < 60000 THEN 0 WHEN duration_ms < 300000 THEN 1 WHEN duration_ms < 900000 THEN 2 "
            "WHEN duration_ms < 1800000 THEN 3 WHEN duration_ms < 3600000 THEN 4 WHEN duration_ms < 7200000 THEN 5 "
            "ELSE 6 END) FROM jobs_job"
        )
        schema_editor.execute("ANALYZE jobs_job")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS reporting_jobs_day_bucket")


class Migration(migrations.Migration):
    dependencies = [("reporting", "0003_report_indexes")]

    operations = [migrations.RunPython(create, drop)]
