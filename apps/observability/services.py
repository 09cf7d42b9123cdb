"""Writes of the observability app: stored request statistics (additive upserts) and their retention."""

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from .constants import BUCKET_COLUMNS
from .models import RequestStat

_TABLE = RequestStat._meta.db_table
_VALUE_COLUMNS = ("requests", "errors", "client_errors", "duration_ms_sum", *BUCKET_COLUMNS)
_COLUMNS = ("bucket", "tenant_key", "tenant_id", "view", *_VALUE_COLUMNS)
# One statement for both SQLite (3.24+) and PostgreSQL: add the batch's figures to the stored row.
_UPSERT = (
    f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "  # noqa: S608
    f"ON CONFLICT (bucket, tenant_key, view) DO UPDATE SET "
    + ", ".join(f"{c} = {_TABLE}.{c} + excluded.{c}" for c in _VALUE_COLUMNS)
)


def store_request_stats(rows: dict) -> int:
    """Add a batch {(bucket epoch seconds, tenant id or 0, view): [requests, errors, client errors, ms, b0..]}
    to the stored statistics, in one transaction; returns the number of rows written."""
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        (adapt(datetime.fromtimestamp(bucket, tz=UTC)), tenant_key, tenant_key or None, view, *values)
        for (bucket, tenant_key, view), values in sorted(rows.items())
    ]
    # Sorted keys: two processes flushing overlapping rows lock them in the same order (no deadlock).
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_UPSERT, params)
    return len(params)


def purge_request_stats(*, older_than_days: int, now=None) -> int:
    """Delete statistics older than the retention; returns how many rows went."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted, _ = RequestStat.objects.filter(bucket__lt=cutoff).delete()
    return deleted
