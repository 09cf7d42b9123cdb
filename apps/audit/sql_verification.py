"""The database verifier on PostgreSQL: each chunk of entries hashed and checked by the database itself, over
several connections that share one snapshot, so only a verdict and the Merkle leaves reach Python.

docs/audit.md, "Verifying fast: the chain checked in PostgreSQL". A chunk the database does not pass (or
cannot check: entries without a stored canonical payload, a query that fails) goes through the prepared-rows
path and then the entry-dict walk (verification.verify_entries), which decide and name the problem, so every
finding stays what it was.
"""

import itertools
import logging
import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from . import selectors
from .models import AuditCheckpoint, AuditLog
from .verification import Rows

# Entries a query checks (32 bytes of Merkle leaf each come back: 1 MB a query).
CHUNK = 32768
_LEAF = 32
APPLICATION_NAME = "tezgah audit verification"

# One chunk [lo, hi], in seq order from the seq index. Per entry: the record body as selectors assembles it,
# hashed; lag() gives it its predecessor's chain hash (seq lo - 1 is read for that, except at the walk's start,
# where %(start)s is the hash the walk starts from; %(lower)s is lo - 1, or lo there). Then every check of
# verification._entry_problem as one condition: record hash, canonical payload hash, the payload column against
# its canonical copy (parsed only when that copy hashes right: a tampered copy may not be JSON), chain hash, link.
# Hex is compared as the stored text, so an upper-case or malformed hash fails as it does in Python. One plan
# level less than computing the condition in a subquery of its own (measured about 8% faster).
_DIGEST_SQL = f"""
SELECT count(*) FILTER (WHERE seq >= %(lo)s),
       min(seq) FILTER (WHERE seq >= %(lo)s AND (
           encode(rec, 'hex') = record_sha256
           AND payload_ok
           AND CASE WHEN payload_ok THEN payload::text = payload_canonical::jsonb::text ELSE false END
           AND encode(sha256(convert_to(prev_hash || record_sha256, 'UTF8')), 'hex') = chain_hash
           AND prev_hash = COALESCE(before, %(start)s)
       ) IS NOT TRUE),
       max(chain_hash) FILTER (WHERE seq = %(lo)s - 1),
       string_agg(rec, ''::bytea ORDER BY seq) FILTER (WHERE seq >= %(lo)s),
       max(chain_hash) FILTER (WHERE seq = %(hi)s)
FROM (
  SELECT seq, prev_hash, chain_hash, record_sha256, payload, payload_canonical,
         sha256(convert_to({selectors.SQL_RECORD_BODY}, 'UTF8')) AS rec,
         encode(sha256(convert_to(payload_canonical, 'UTF8')), 'hex') = payload_sha256 AS payload_ok,
         lag(chain_hash) OVER (ORDER BY seq) AS before
  FROM {AuditLog._meta.db_table}
  WHERE seq >= %(lower)s AND seq <= %(hi)s
) entries
"""  # noqa: S608 - our table and the module's SQL; the bounds are parameters
# For the transaction: lag()'s buffer of a chunk stays in memory; each chunk is planned for its own bounds (a
# generic plan of a prepared statement may scan and sort the whole table for every chunk); and no parallel
# workers under a chunk query: the connections are the parallelism, more processes only share the same cores.
_SETTINGS = (
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL plan_cache_mode = force_custom_plan",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)
logger = logging.getLogger(__name__)
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")


class Digest:
    """One chunk as PostgreSQL checked it: whether every entry passed, and its record hashes (Merkle leaves).

    verification.verify_entries reads it like Rows: a chunk that is not intact is walked again from `dicts()`.
    """

    def __init__(self, lo, hi, start, row):
        self.lo, self.hi, self.start = lo, hi, start
        self.count, self.first_bad, self.linked_from, self.leaf_bytes, self.last_chain = row or (0, lo, None, b"", None)
        self.failed = row is None  # the query itself failed: the Python path decides
        self._stops = {}

    def __len__(self):
        return self.count

    def intact(self, expected_seq, prev_hash):
        return (
            not self.failed
            and self.lo == expected_seq
            and self.count == self.hi - self.lo + 1
            and self.first_bad is None
            and (self.start if self.linked_from is None else self.linked_from) == prev_hash
            and self.leaf_bytes is not None
            and len(self.leaf_bytes) == _LEAF * self.count
        )

    def seq(self, i):
        return self.lo + i

    def chain_hash(self, i):
        return self.last_chain if i == self.count - 1 else self._stop(i)[1]

    def entry_id(self, i):
        return self._stop(i)[0]

    def _stop(self, i):
        """(id, chain_hash) of the i-th entry, asked for only at checkpoints and the witness: read for every
        checkpoint of the chunk at the first ask (one query a chunk, however often checkpoints come)."""
        seq = self.lo + i
        if seq not in self._stops:
            checkpoints = AuditCheckpoint.objects.filter(tree_size__range=(self.lo, self.hi)).values("tree_size")
            rows = AuditLog.objects.filter(Q(seq=seq) | Q(seq__in=checkpoints), seq__range=(self.lo, self.hi))
            self._stops.update((s, (pk, chain)) for s, pk, chain in rows.values_list("seq", "id", "chain_hash"))
        return self._stops[seq]

    def leaves(self, start, stop):
        data = self.leaf_bytes
        return [data[k : k + _LEAF] for k in range(start * _LEAF, stop * _LEAF, _LEAF)]

    def dicts(self):
        return [entry for rows in prepared_rows(self.lo, self.hi) for entry in rows.dicts()]


def prepared_rows(first_seq, last_seq):
    """The sealed entries [first_seq, last_seq] as Rows (prepared by the database, hashed in Python)."""

    def load(first, last):
        return selectors.chain_entries(from_seq=first, to_seq=last, chunk_size=20000)

    rows = selectors.verification_rows(from_seq=first_seq, to_seq=last_seq, chunk_size=20000)
    return (Rows(chunk, load) for chunk in rows)


class _Connections:
    """Extra connections for the chunk queries, one per worker thread, each in a repeatable-read transaction on
    the snapshot the main connection exported: every query sees the chain as of one moment."""

    def __init__(self, snapshot):
        self.snapshot, self.local, self.opened, self.lock = snapshot, threading.local(), [], threading.Lock()
        # The main thread's: same database, same options; named so ops see them in pg_stat_activity.
        self.params = {**connection.get_connection_params(), "application_name": APPLICATION_NAME}

    def _connection(self):
        conn = connection.Database.connect(**self.params)
        with self.lock:
            self.opened.append(conn)
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")  # checked against _SNAPSHOT_ID
        _apply_settings(conn)
        return conn

    def digest(self, lo, hi, lower, start):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            try:
                conn = self.local.conn = self._connection()
            except connection.Database.Error as exc:  # e.g. max_connections reached: this chunk in Python
                _failed(lo, hi, exc)
                return None
        conn.execute("SAVEPOINT audit_digest")
        try:
            row = conn.execute(_DIGEST_SQL, {"lo": lo, "hi": hi, "lower": lower, "start": start}).fetchone()
        except connection.Database.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT audit_digest")
            _failed(lo, hi, exc)
            return None
        conn.execute("RELEASE SAVEPOINT audit_digest")
        return row

    def close(self):
        for conn in self.opened:
            with suppress(connection.Database.Error):
                conn.close()


def _digest_here(lo, hi, lower, start):
    """A chunk query on the main connection (one connection, or a caller's transaction other connections
    cannot see into)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_DIGEST_SQL, {"lo": lo, "hi": hi, "lower": lower, "start": start})
            return cursor.fetchone()
    except DatabaseError as exc:
        _failed(lo, hi, exc)
        return None


def _apply_settings(cursor):
    for statement in _SETTINGS:
        cursor.execute(statement)


def _failed(lo, hi, exc):
    # Slower, not wrong: the prepared rows and the Python walk check this chunk instead.
    logger.warning("audit verification: the database could not check seq %s-%s (%s); checking it in Python",
                   lo, hi, exc)  # fmt: skip


@contextmanager
def _snapshot_transaction():
    """The main connection in one repeatable-read transaction, and its exported snapshot for the connections
    that run the chunk queries (None inside a caller's transaction: the queries run on this connection)."""
    if connection.in_atomic_block:  # the caller's transaction: its uncommitted rows are visible to it alone
        with transaction.atomic():  # a savepoint, rolled back at the end so the settings leave with it
            with connection.cursor() as cursor:
                _apply_settings(cursor)
            try:
                yield None
            finally:
                transaction.set_rollback(True)  # only reads happened in it
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _apply_settings(cursor)
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        if not _SNAPSHOT_ID.match(snapshot):
            raise DatabaseError(f"unexpected snapshot id {snapshot!r}")
        yield snapshot


def _ahead(executor, query, ranges, depth):
    """((lo, hi), query(lo, hi)) for each range in order, `depth` queries submitted ahead of the one being read."""
    pending = deque()
    for lo, hi in itertools.islice(ranges, depth):
        pending.append(((lo, hi), executor.submit(query, lo, hi)))
    while pending:
        bounds, future = pending.popleft()
        for lo, hi in itertools.islice(ranges, 1):
            pending.append(((lo, hi), executor.submit(query, lo, hi)))
        yield bounds, future.result()


@contextmanager
def digests(*, first_seq, last_seq, prev_hash, workers=None, chunk_size=None):
    """verify_entries' `chunks` for the sealed entries [first_seq, last_seq] (None: to the head), starting after
    `prev_hash`: Digests in seq order, `workers` queries at a time."""
    workers, chunk_size = max(1, workers or settings.AUDIT_VERIFY_CONNECTIONS), chunk_size or CHUNK
    with _snapshot_transaction() as snapshot:
        head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first()
        end = head if head is None or last_seq is None else min(last_seq, head)
        starts = range(first_seq, end + 1, chunk_size) if end is not None else ()
        ranges = ((lo, min(lo + chunk_size - 1, end)) for lo in starts)  # lazy: a seq moved far out makes many
        pool = _Connections(snapshot) if snapshot else None
        executor = ThreadPoolExecutor(workers, thread_name_prefix="audit-verify") if pool else None
        try:
            yield _chunks(ranges, first_seq, prev_hash, last_seq, pool, executor, workers)
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            if pool is not None:
                pool.close()


def _chunks(ranges, first_seq, prev_hash, last_seq, pool, executor, workers):
    def start(lo):  # the hash the chunk's first entry links to, given only at the walk's start (else seq lo - 1)
        return prev_hash if lo == first_seq else None

    def query(lo, hi):
        lower = lo if lo == first_seq else lo - 1
        return (pool.digest if pool else _digest_here)(lo, hi, lower, start(lo))

    if executor is None:
        results = (((lo, hi), query(lo, hi)) for lo, hi in ranges)
    else:
        results = _ahead(executor, query, ranges, 2 * workers)
    for (lo, hi), row in results:
        digest = Digest(lo, hi, start(lo), row)
        if digest.failed or digest.count == hi - lo + 1:
            yield digest
            continue
        # Entries missing in [lo, hi] (a gap, or a seq moved past the head): the prepared rows take the rest of
        # the walk, and the Python path names the problem.
        yield from prepared_rows(lo, last_seq)
        return
