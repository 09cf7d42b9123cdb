"""Indexes and planner statistics on jobs_job for the reports (docs/benchmarks.md has the figures).

They live here, in raw SQL, because they serve only reporting and the jobs app must not know about it:
- (id, tenant_id): the detail report's offset paging walks this index alone (an index-only scan);
- (duration_ms, tenant_id) where a duration exists: unfiltered percentiles walk it instead of sorting;
- ndistinct statistics on the summary's grouping columns: without them PostgreSQL multiplies the
  columns' distinct counts, expects 100 000 groups instead of ~2 600, and sorts on disk instead of hashing.
"""

from django.db import migrations

INDEXES = [
    "CREATE INDEX IF NOT EXISTS reporting_jobs_id_tenant ON jobs_job (id, tenant_id)",
    "CREATE INDEX IF NOT EXISTS reporting_jobs_duration_tenant ON jobs_job (duration_ms, tenant_id) "
    "WHERE duration_ms IS NOT NULL",
]
PG_ONLY = [
    "CREATE STATISTICS IF NOT EXISTS reporting_jobs_grain (ndistinct) "
    "ON status, model_type_id, machine_id, post_id FROM jobs_job",
    "ANALYZE jobs_job",
]


def create(apps, schema_editor):
    statements = INDEXES + (PG_ONLY if schema_editor.connection.vendor == "postgresql" else [])
    for sql in statements:
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS reporting_jobs_id_tenant")
    schema_editor.execute("DROP INDEX IF EXISTS reporting_jobs_duration_tenant")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS reporting_jobs_grain")


class Migration(migrations.Migration):
    dependencies = [("reporting", "0002_reporting_capabilities"), ("jobs", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
