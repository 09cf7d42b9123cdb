"""Request statistics accumulated in the process and written to the database in batches.

One row per (bucket start, tenant, view) and flush, added to the stored row (an upsert), never a row per request:
`add()` is a dictionary update under a lock; the middleware calls `flush_if_due()` after a response, which
writes at most every OBSERVABILITY_STATS_FLUSH_SECONDS, and the process flushes what is left when it exits.
A worker killed with SIGKILL loses at most that many seconds of its statistics (docs/observability.md).
"""

import atexit
import bisect
import contextlib
import logging
import threading
import time

from django.conf import settings

from .constants import BUCKET_COLUMNS, LATENCY_BUCKETS

logger = logging.getLogger(__name__)

# Rows kept across failed flushes at most (the database down for long): beyond it the oldest are dropped.
MAX_PENDING_ROWS = 50000
# requests, errors (5xx), client errors (4xx), summed duration in ms, then one count per latency bucket.
_WIDTH = 4 + len(BUCKET_COLUMNS)


class StatsBuffer:
    def __init__(self):
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, int, str], list] = {}
        self._last_flush = time.monotonic()

    def add(self, *, at: float, tenant_id: int | None, view: str, status: int, seconds: float) -> None:
        bucket_seconds = settings.OBSERVABILITY_STATS_BUCKET_SECONDS
        key = (int(at // bucket_seconds) * bucket_seconds, tenant_id or 0, view)
        index = 4 + bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0] * _WIDTH
            row[0] += 1
            if status >= 500:
                row[1] += 1
            elif status >= 400:
                row[2] += 1
            row[3] += seconds * 1000.0
            row[index] += 1

    def drain(self) -> dict:
        with self._lock:
            rows, self._rows = self._rows, {}
            self._last_flush = time.monotonic()
        return rows

    def put_back(self, rows: dict) -> None:
        """Merge rows of a failed flush back, so the next flush writes them."""
        with self._lock:
            for key, values in rows.items():
                row = self._rows.get(key)
                if row is None:
                    if len(self._rows) >= MAX_PENDING_ROWS:
                        continue
                    self._rows[key] = values
                else:
                    for i, v in enumerate(values):
                        row[i] += v

    def due(self) -> bool:
        return bool(self._rows) and time.monotonic() - self._last_flush >= settings.OBSERVABILITY_STATS_FLUSH_SECONDS

    def flush(self) -> int:
        """Write every accumulated row (upserts); returns the number of rows written. Failures keep the rows."""
        from . import metrics, services

        rows = self.drain()
        if not rows:
            return 0
        try:
            written = services.store_request_stats(rows)
        except Exception:  # the database may be away: keep the figures for the next flush, never fail a request
            logger.warning("Request statistics not stored; kept for the next flush", exc_info=True)
            metrics.STATS_FLUSH_ERRORS.inc()
            self.put_back(rows)
            return 0
        metrics.STATS_FLUSHES.inc(written)
        return written

    def flush_if_due(self) -> None:
        if self.due():
            self.flush()


buffer = StatsBuffer()


@atexit.register
def _flush_at_exit():
    # flush() catches and logs its own failures; at interpreter shutdown even logging may be gone.
    if buffer._rows:
        with contextlib.suppress(Exception):
            buffer.flush()
