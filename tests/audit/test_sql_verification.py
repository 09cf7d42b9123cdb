"""The chain checked in PostgreSQL (apps/audit/sql_verification.py): chunks hashed and checked by the database on
several connections sharing one snapshot give the same report as the Python walk, judge an intact chain
themselves (no chunk falls back), and find every tampering at the same seq with the same problem."""

import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.audit import hashing, selectors, services, sql_verification
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.audit.verification import CANONICAL_PROBLEM, verify_entries
from tests.audit.tampering import tamper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AWKWARD = 'çift "tırnak" \\ ters\n\t\x01\x1f\x7f İş ığ \u2028 😀'
RECHAINED = "encode(sha256(convert_to(repeat('b', 64) || record_sha256, 'UTF8')), 'hex')"
SIZE = 23  # chunks of 4: [1-4] ... [21-23]; checkpoints at a chunk's end (8), start (13), inside (18), the head


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(sql_verification, "CHUNK", 4)


@pytest.fixture
def fallbacks(monkeypatch):
    """The chunks the database did not pass, as (first seq, count) pairs."""
    seen = []
    original = sql_verification.Digest.dicts

    def dicts(self):
        seen.append((self.lo, self.count))
        return original(self)

    monkeypatch.setattr(sql_verification.Digest, "dicts", dicts)
    return seen


def _chain(size=SIZE, checkpoints=(8, 13, 18)):
    """Version-2 entries with awkward text, seq 1-3 hashed as version 1 (as entries written before version 2)."""
    for seq in range(1, size + 1):
        services.record(
            ("user", AWKWARD), f"e.{seq}", None, {"n": [1, 2.5, None, True], "s": AWKWARD, "seq": seq},
            object_type="t", object_id=AWKWARD, tenant_id=seq % 3 or None,
        )  # fmt: skip
        if seq == 3:
            tamper("UPDATE audit_logs SET version = 1 WHERE seq IS NULL")
        services.seal_pending()
        if seq in checkpoints:
            services.make_checkpoint(force=True)
    services.make_checkpoint(force=True)


def _verify(**kw):
    return verify_database(public_key=services.signing_key().public_key(), **kw)


def test_the_database_passes_an_intact_chain_itself_and_reports_as_the_python_walk(fallbacks):
    _chain()
    walk = verify_entries(selectors.chain_entries(), checkpoints=selectors.checkpoints())
    for db_connections in (2, 1, 3):
        report = _verify(db_connections=db_connections)
        assert report.ok, report.finding
        assert (report.checked, report.first_seq, report.last_seq) == (SIZE, 1, SIZE)
        assert report.head_hash == walk.head_hash and report.checkpoints_checked == walk.checkpoints_checked == 4
    assert fallbacks == []  # every chunk judged in SQL: the Python path did not decide for it


def test_the_leaves_and_chain_hashes_are_the_stored_ones():
    _chain()
    stored = list(AuditLog.objects.filter(seq__isnull=False).order_by("seq").values_list("record_sha256", "chain_hash"))
    with sql_verification.digests(first_seq=1, last_seq=None, prev_hash=hashing.GENESIS_HASH, workers=2) as chunks:
        digests = list(chunks)
    assert [(d.lo, d.hi) for d in digests] == [(1, 4), (5, 8), (9, 12), (13, 16), (17, 20), (21, 23)]
    leaves = [leaf for d in digests for leaf in d.leaves(0, len(d))]
    assert leaves == [bytes.fromhex(record) for record, _ in stored]
    assert [d.chain_hash(len(d) - 1) for d in digests] == [stored[d.hi - 1][1] for d in digests]


@pytest.mark.parametrize(("from_seq", "to_seq"), [(9, None), (14, 18), (5, 5), (22, 40)])
def test_a_part_of_the_chain_verifies_as_the_python_walk(from_seq, to_seq, fallbacks):
    _chain()
    report = _verify(from_seq=from_seq, to_seq=to_seq)
    expected, prev = selectors.chain_start(from_seq)
    walk = verify_entries(
        selectors.chain_entries(from_seq=from_seq, to_seq=to_seq), expected_seq=expected, prev_hash=prev
    )
    assert report.ok and walk.ok
    assert (report.checked, report.first_seq, report.last_seq, report.head_hash) == (
        walk.checked, walk.first_seq, walk.last_seq, walk.head_hash,
    )  # fmt: skip
    assert fallbacks == []


@pytest.mark.parametrize(
    ("sql", "seq", "problem"),
    [
        ("UPDATE audit_logs SET payload = jsonb_set(payload, '{s}', '\"x\"') WHERE seq = 6", 6, "payload does not"),
        ("UPDATE audit_logs SET payload_canonical = 'not json' WHERE seq = 10", 10, CANONICAL_PROBLEM),
        ("UPDATE audit_logs SET payload_canonical = '{\"i\": 0}' WHERE seq = 2", 2, CANONICAL_PROBLEM),
        ("UPDATE audit_logs SET action = 'forged' WHERE seq = 5", 5, "record hash does not match"),
        ("UPDATE audit_logs SET object_id = object_id || 'x' WHERE seq = 2", 2, "record hash does not match"),
        ("UPDATE audit_logs SET tenant_id = NULL WHERE seq = 14", 14, "record hash does not match"),
        ("UPDATE audit_logs SET ts = ts + interval '1 microsecond' WHERE seq = 23", 23, "record hash does not"),
        ("UPDATE audit_logs SET version = 3 WHERE seq = 7", 7, "cannot be hashed"),
        ("UPDATE audit_logs SET record_sha256 = repeat('0', 64) WHERE seq = 12", 12, "record hash does not match"),
        ("UPDATE audit_logs SET payload_canonical = payload::text WHERE seq = 4", 4, CANONICAL_PROBLEM),  # same jsonb
        ("UPDATE audit_logs SET prev_hash = repeat('b', 64) WHERE seq = 9", 9, "prev_hash is not"),
        # Re-chained: the entry's own hashes agree, only the link to the entry before breaks (in a chunk, across two).
        (
            f"UPDATE audit_logs SET prev_hash = repeat('b', 64), chain_hash = {RECHAINED} WHERE seq = 10",
            10,
            "prev_hash",
        ),
        (f"UPDATE audit_logs SET prev_hash = repeat('b', 64), chain_hash = {RECHAINED} WHERE seq = 9", 9, "prev_hash"),
        ("UPDATE audit_logs SET chain_hash = upper(chain_hash) WHERE seq = 23", 23, "chain_hash is not"),
        ("UPDATE audit_logs SET chain_hash = repeat('a', 64) WHERE seq = 16", 16, "chain_hash is not"),
        ("UPDATE audit_logs SET seq = 1000000000000 WHERE seq = 10", 11, "expected seq 10, found 11"),
        ("DELETE FROM audit_logs WHERE seq BETWEEN 13 AND 16", 17, "expected seq 13, found 17"),
        ("DELETE FROM audit_logs WHERE seq = 23", 23, "missing tail"),
    ],
)
def test_tampering_is_found_where_and_as_the_python_walk_finds_it(sql, seq, problem):
    _chain()
    tamper(sql)
    report = _verify()
    assert not report.ok and problem in report.finding.problem
    assert report.finding.seq == seq
    plain = verify_entries(selectors.chain_entries(), checkpoints=selectors.checkpoints())
    if problem != CANONICAL_PROBLEM:  # the canonical copy is in the database rows only
        assert (plain.finding.seq, plain.finding.entry_id, plain.finding.problem) == (
            report.finding.seq, report.finding.entry_id, report.finding.problem,
        )  # fmt: skip


def test_entries_without_a_canonical_payload_go_through_python_and_verify(fallbacks):
    _chain()
    tamper("UPDATE audit_logs SET payload_canonical = NULL WHERE seq BETWEEN 5 AND 7")  # as before audit.0008
    report = _verify()
    assert report.ok and report.checked == SIZE
    assert fallbacks == [(5, 4)]  # that chunk only; the others were judged in SQL


def test_a_chunk_query_that_fails_is_decided_by_python(monkeypatch, fallbacks, caplog):
    _chain()
    monkeypatch.setattr(
        sql_verification, "_DIGEST_SQL",
        "SELECT 1 / 0 WHERE %(lo)s::bigint + %(hi)s::bigint + %(lower)s::bigint > 0 OR %(start)s::text IS NULL",
    )  # fmt: skip
    assert _verify().ok
    assert len(fallbacks) == 6
    assert "could not check seq 1-4 (division by zero); checking it in Python" in caplog.text
    tamper("UPDATE audit_logs SET action = 'forged' WHERE seq = 11")
    report = _verify(db_connections=1)
    assert report.finding.seq == 11 and "record hash" in report.finding.problem


def test_the_worker_connections_read_the_main_connections_snapshot():
    _chain(size=6, checkpoints=())

    def append_one():
        try:
            services.record(None, "after.snapshot", payload={"late": True})
            services.seal_pending()
        finally:
            connection.close()

    with sql_verification._snapshot_transaction() as snapshot:
        writer = threading.Thread(target=append_one)
        writer.start()
        writer.join()
        pool = sql_verification._Connections(snapshot)
        try:
            count, *_ = pool.digest(7, 7, 6, None)
        finally:
            pool.close()
    assert count == 0  # committed after the snapshot: not there for the workers
    assert AuditLog.objects.filter(seq=7).exists()
    assert _verify().checked == 7


def _verifier_backends():
    """The worker connections still open, waiting (up to 5 s) for closed ones to leave pg_stat_activity."""
    with connection.cursor() as cursor:
        for _ in range(50):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           [sql_verification.APPLICATION_NAME])  # fmt: skip
            if not (count := cursor.fetchone()[0]):
                break
            time.sleep(0.1)  # a backend leaves the view a moment after its client closed it
    return count


def test_a_walk_that_stops_early_closes_its_connections(monkeypatch):
    _chain()
    opened = []
    original = sql_verification._Connections._connection
    monkeypatch.setattr(sql_verification._Connections, "_connection", lambda self: opened.append(1) or original(self))
    tamper("UPDATE audit_logs SET action = 'forged' WHERE seq = 2")  # found in the first chunk, others queued
    assert _verify(db_connections=3).finding.seq == 2
    assert 1 <= len(opened) <= 3  # opened (one per thread that got a chunk), named, and closed again
    assert _verifier_backends() == 0


def test_the_command_takes_the_number_of_connections(capsys):
    _chain(size=9, checkpoints=(4,))
    call_command("verify_audit_chain", connections=1)
    assert "intact: 9 entries" in capsys.readouterr().out
    call_command("verify_audit_chain", connections=4)
    assert "2 checkpoints match" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--connections must be at least 1"):
        call_command("verify_audit_chain", connections=0)


@pytest.mark.django_db(transaction=False)
def test_inside_a_callers_transaction_the_chunks_are_checked_on_its_connection(monkeypatch, fallbacks):
    """Other connections cannot see the caller's uncommitted entries: the chunk queries run on its connection."""
    _chain(size=10, checkpoints=(4,))
    here = []
    original = sql_verification._digest_here
    monkeypatch.setattr(sql_verification, "_digest_here", lambda *a: here.append(a[:2]) or original(*a))
    assert connection.in_atomic_block
    report = _verify()
    assert report.ok and report.checked == 10 and report.checkpoints_checked == 2
    assert here == [(1, 4), (5, 8), (9, 10)] and fallbacks == []
    tamper("UPDATE audit_logs SET prev_hash = repeat('b', 64), chain_hash = " + RECHAINED + " WHERE seq = 6")
    assert _verify().finding.seq == 6


def test_checkpoint_heads_are_read_once_a_chunk(django_assert_max_num_queries):
    """With a checkpoint after every entry (AUDIT_CHECKPOINT_EVERY=1 is allowed), each chunk still reads its
    checkpoints' ids and chain hashes in one query."""
    _chain(size=12, checkpoints=range(1, 13))
    with sql_verification.digests(first_seq=1, last_seq=None, prev_hash=hashing.GENESIS_HASH, workers=2) as chunks:
        digests = list(chunks)
    heads = dict(AuditLog.objects.filter(seq__isnull=False).values_list("seq", "chain_hash"))
    with django_assert_max_num_queries(3):
        assert [d.chain_hash(i) for d in digests for i in range(len(d))] == [heads[s] for s in range(1, 13)]
    report = _verify()
    assert report.ok and report.checkpoints_checked == 12


def test_a_worker_that_cannot_connect_leaves_its_chunks_to_python(monkeypatch, fallbacks, caplog):
    _chain(size=9, checkpoints=())

    def refuse(self):
        raise connection.Database.OperationalError("too many clients already")

    monkeypatch.setattr(sql_verification._Connections, "_connection", refuse)
    report = _verify()
    assert report.ok and report.checked == 9 and len(fallbacks) == 3
    assert "could not check seq 1-4 (too many clients already)" in caplog.text


@pytest.mark.django_db(transaction=False)
def test_the_settings_for_the_chunk_queries_do_not_outlive_the_check_in_a_callers_transaction():
    _chain(size=5, checkpoints=())
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        before = cursor.fetchone()[0]
        assert _verify().ok
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == before != "64MB"
