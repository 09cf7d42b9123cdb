"""Benchmark: retention over N expired ERP sync attempts (PostgreSQL), beside plain batched DELETEs of the same rows:
one that selects each batch by the cutoff alone (the obvious loop), one that walks the primary key returning the
ids, and one that runs retention's own key-range algorithm in bare SQL (the limit the ratio is taken against).

Both runs delete the same rows, made the same way, in the same process, in batches of the same size: the
figure that matters is the ratio (the machine may be loaded). Peak memory is the process's maximum RSS
before and after each run (bounded memory: it must not grow with N).
"""

import resource
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

TABLE = "erp_mes_sync_attempts"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "Time retention over expired ERP sync attempts beside a plain batched DELETE (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--batch", type=int, default=5000)
        parser.add_argument("--archive", action="store_true", help="archive before delete (the policy's option)")

    def _fill(self, rows: int) -> None:
        from apps.erp.models import ErpSync

        started = timezone.now() - timedelta(days=4000)
        syncs = max(1, rows // 1000)
        with transaction.atomic():
            made = ErpSync.objects.bulk_create(
                ErpSync(direction="outbound", idempotency_key=f"bench-{i}", body_sha256="0" * 64, request_body={},
                        body="{}")
                for i in range(syncs)
            )  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {TABLE} (sync_id, number, request_id, started_at, duration_ms, outcome, "  # noqa: S608
                    "error_class, error_message, response_excerpt, signed_with) "
                    "SELECT s, n, 'req-' || s || '-' || n, %s, 12, 'ok', '', '', 'ok', '' "
                    "FROM unnest(%s::bigint[]) s, generate_series(1, %s) n",
                    [started, [m.pk for m in made], rows // syncs],
                )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")

    def _count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")  # noqa: S608
            return cursor.fetchone()[0]

    def _plain_delete(self, batch: int, cutoff) -> int:
        deleted = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE started_at < %s "  # noqa: S608
                    "ORDER BY id LIMIT %s)",
                    [cutoff, batch],
                )
                if cursor.rowcount == 0:
                    return deleted
                deleted += cursor.rowcount

    def _keyset_delete(self, batch: int, cutoff) -> int:
        """The same plain DELETE, walking the primary key (no rescan of the rows already deleted)."""
        deleted, last = 0, 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE started_at < %s AND id > %s "  # noqa: S608
                    "ORDER BY id LIMIT %s) RETURNING id",
                    [cutoff, last, batch],
                )
                ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return deleted
            deleted, last = deleted + len(ids), max(ids)

    def _range_delete(self, batch: int, cutoff) -> int:
        """Retention's own algorithm in bare SQL: the batch-th key bounds a range, one DELETE takes it."""
        deleted, last = 0, 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id FROM {TABLE} WHERE started_at < %s AND id > %s ORDER BY id "  # noqa: S608
                    "OFFSET %s LIMIT 1",
                    [cutoff, last, batch - 1],
                )
                bound = cursor.fetchone()
                if bound is None:
                    cursor.execute(f"SELECT max(id) FROM {TABLE} WHERE started_at < %s AND id > %s", [cutoff, last])  # noqa: S608
                    bound = cursor.fetchone()
                if bound is None or bound[0] is None:
                    return deleted
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE started_at < %s AND id > %s AND id <= %s",  # noqa: S608
                    [cutoff, last, bound[0]],
                )
                deleted, last = deleted + cursor.rowcount, bound[0]

    def handle(self, *args, rows, batch, archive, **options):
        if connection.vendor != "postgresql":
            raise CommandError("this benchmark runs on PostgreSQL (set DATABASE_URL)")
        from apps.erp.models import ErpSync, ErpSyncAttempt
        from apps.governance import constants, retention
        from apps.governance.models import RetentionPolicy, RetentionRun

        RetentionPolicy.objects.filter(data_class=constants.ERP_SYNC_ATTEMPTS).update(
            retention_days=365, archive_before_delete=archive
        )
        cutoff = timezone.now() - timedelta(days=365)
        results = {}
        names = ("plain batched DELETE", "plain keyset DELETE", "plain range DELETE", "retention (apply_class)")
        for name in names:
            ErpSyncAttempt.objects.all()._raw_delete(ErpSyncAttempt.objects.db)
            ErpSync.objects.filter(idempotency_key__startswith="bench-").delete()
            self._fill(rows)
            filled = self._count()
            rss_before = _rss_mb()
            started = time.perf_counter()
            if name == "plain batched DELETE":
                deleted = self._plain_delete(batch, cutoff)
            elif name == "plain keyset DELETE":
                deleted = self._keyset_delete(batch, cutoff)
            elif name == "plain range DELETE":
                deleted = self._range_delete(batch, cutoff)
            else:
                RetentionRun.objects.filter(data_class=constants.ERP_SYNC_ATTEMPTS).delete()
                deleted = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=batch).deleted
            seconds = time.perf_counter() - started
            results[name] = (filled, deleted, seconds, rss_before, _rss_mb())
        ErpSync.objects.filter(idempotency_key__startswith="bench-").delete()
        base = results["plain range DELETE"][1] / results["plain range DELETE"][2]
        for name, (filled, deleted, seconds, before, after) in results.items():
            rate = deleted / seconds
            self.stdout.write(
                f"{name}: {deleted} of {filled} rows in {seconds:.1f} s = {rate:,.0f} rows/s "
                f"({rate / base:.0%} of the plain range DELETE); max RSS {before:.0f} -> {after:.0f} MB"
            )
