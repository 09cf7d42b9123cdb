"""The database verifier's prepared rows (selectors.verification_rows): the record body assembled by
PostgreSQL and the canonical payload stored with each entry since audit.0008, mixed with entries written
before it (payload_canonical null), verify exactly like the entry dicts, and every tampering is found."""

import pytest
from django.db import connection

from apps.audit import hashing, selectors, services
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.audit.verification import verify_entries
from tests.audit.tampering import tamper

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared rows are PostgreSQL only")

# Text that needs JSON escapes, non-ASCII, control characters: the SQL body must match json's encoder.
AWKWARD = 'çift "tırnak" \\ ters\n\t\x01\x1f\x7f İş ığ \u2028 😀'


def _mixed_chain():
    """Entries 1-3 as written before payload_canonical existed (null), 4-7 as written now."""
    for i in range(3):
        services.record(None, "old.event", payload={"i": i, "s": AWKWARD}, object_type="t", object_id=str(i))
    services.seal_pending()
    tamper("UPDATE audit_logs SET payload_canonical = NULL")  # as the rows written before audit.0008
    for i in range(4):
        services.record(
            ("user", AWKWARD), AWKWARD, None, {"n": [1, 2.5, None, True], "s": AWKWARD, "z": {"b": 1, "a": 2}},
            object_type="t", object_id=AWKWARD, tenant_id=i or None,
        )  # fmt: skip
    services.seal_pending()
    services.make_checkpoint(force=True)


def _prepared(**kw):
    return verify_database(public_key=services.signing_key().public_key(), **kw)


@pytest.mark.django_db(transaction=True)
def test_old_and_new_entries_mixed_verify_and_the_sql_body_is_the_python_body():
    _mixed_chain()
    stored = list(AuditLog.objects.order_by("seq").values_list("payload_canonical", flat=True))
    assert stored[:3] == [None] * 3 and all(stored[3:])
    rows = [r for chunk in selectors.verification_rows() for r in chunk]
    entries = list(selectors.chain_entries())
    for row, entry in zip(rows, entries, strict=True):
        assert row[2].encode() == hashing.record_bytes(entry)  # the SQL-assembled body, byte for byte
        if row[3] is not None:
            assert row[3].encode() == hashing.canonical_json(entry["payload"])
    report = _prepared()
    assert report.ok and report.checked == 7 and report.checkpoints_checked == 1
    assert report.head_hash == verify_entries(iter(entries)).head_hash


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "seq", "problem"),
    [
        ('UPDATE audit_logs SET payload = \'{"i": 9, "s": "x"}\' WHERE seq = 2', 2, "payload does not match"),
        ("UPDATE audit_logs SET payload = jsonb_set(payload, '{s}', '\"x\"') WHERE seq = 5", 5, "does not match"),
        ("UPDATE audit_logs SET payload_canonical = '{\"i\":0}' WHERE seq = 6", 6, "canonical payload stored"),
        ("UPDATE audit_logs SET payload_canonical = NULL WHERE seq = 6", None, None),  # null: hashed from payload
        ("UPDATE audit_logs SET action = 'forged' WHERE seq = 4", 4, "record hash does not match"),
        ("UPDATE audit_logs SET client_ip = '10.0.0.1' WHERE seq = 1", 1, "record hash does not match"),
        ("UPDATE audit_logs SET tenant_id = 99 WHERE seq = 7", 7, "record hash does not match"),
        ("UPDATE audit_logs SET ts = ts + interval '1 microsecond' WHERE seq = 3", 3, "record hash does not match"),
        ("UPDATE audit_logs SET chain_hash = repeat('a', 64) WHERE seq = 5", 5, "chain_hash is not"),
        ("UPDATE audit_logs SET seq = 70 WHERE seq = 7", 70, "gap or reorder"),
    ],
)
def test_tampering_is_found_in_old_and_new_entries(sql, seq, problem):
    _mixed_chain()
    tamper(sql)
    report = _prepared()
    if problem is None:
        assert report.ok
        return
    assert not report.ok and problem in report.finding.problem
    if seq is not None:
        assert report.finding.seq == seq
    # The entry-dict walk over the same rows names the same seq (and the same problem, apart from the
    # canonical copy, which only the database rows carry).
    plain = verify_entries(selectors.chain_entries(), checkpoints=selectors.checkpoints())
    if "canonical" not in problem:
        assert (
            not plain.ok and plain.finding.seq == report.finding.seq and plain.finding.problem == report.finding.problem
        )
