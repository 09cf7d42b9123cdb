"""PostgreSQL statistics on the Istanbul calendar day of jobs_job.created_at, for the dashboard's trend.

Without them PostgreSQL expects one group per row for `GROUP BY (created_at AT TIME ZONE ...)::date`
and sorts a million rows on disk; with them it knows there are ~90 days and hashes in parallel
(1.05 s -> 0.38 s on 1M jobs, docs/benchmarks.md).
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE STATISTICS IF NOT EXISTS reporting_jobs_istanbul_day "
            "ON ((created_at AT TIME ZONE 'Europe/Istanbul')::date) FROM jobs_job"
        )
        schema_editor.execute("ANALYZE jobs_job")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS reporting_jobs_istanbul_day")


class Migration(migrations.Migration):
    dependencies = [("reporting", "0003_report_indexes")]

    operations = [migrations.RunPython(create, drop)]
