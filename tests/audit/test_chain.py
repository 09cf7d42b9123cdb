import itertools
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.audit import hashing, selectors, services
from apps.audit.models import AuditLog
from apps.audit.verification import verify_entries
from tests import factories
from tests.audit.tampering import tamper

REFUSED = (DatabaseError, IntegrityError)


def _verify():
    return verify_entries(selectors.chain_entries())


def _entries(n, **kwargs):
    for i in range(n):
        services.record(None, "test.event", payload={"i": i, "ad": "Işıl Güneş"}, object_type="test", object_id=str(i))
    services.seal_pending()
    return list(AuditLog.objects.order_by("seq"))


@pytest.mark.django_db
def test_sealed_entries_form_a_chain_that_verifies_from_genesis():
    rows = _entries(5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == hashing.GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.chain_hash
    report = _verify()
    assert report.ok and report.checked == 5 and report.head_hash == rows[-1].chain_hash


@pytest.mark.django_db
def test_the_record_hash_is_the_documented_canonical_json():
    """Version 1 (entries written before version 2 keep it; version 2: tests/audit/test_record_v2.py)."""
    services.record(None, "test.event", payload={"i": 0, "ad": "Işıl Güneş"}, object_type="test", object_id="0")
    tamper("UPDATE audit_logs SET version = 1 WHERE seq IS NULL")  # as record() wrote it before version 2
    services.seal_pending()
    row = AuditLog.objects.get()
    assert row.version == 1
    body = {
        "seq": 1, "ts": row.ts.astimezone(hashing.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor_type": "system",
        "actor_id": "", "action": "test.event", "object_type": "test", "object_id": "0",
        "payload_sha256": row.payload_sha256, "tenant_id": None, "request_id": "", "client_ip": "", "version": 1,
    }  # fmt: skip
    import hashlib
    import json

    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert row.record_sha256 == hashlib.sha256(canonical).hexdigest()
    assert row.chain_hash == hashlib.sha256((hashing.GENESIS_HASH + row.record_sha256).encode()).hexdigest()
    assert row.payload_sha256 == hashlib.sha256('{"ad":"Işıl Güneş","i":0}'.encode()).hexdigest()


@pytest.mark.django_db
def test_an_entry_records_actor_object_tenant_request_id_and_ip(role_users, tenant_a):
    from apps.core import request_context

    job = factories.JobFactory(tenant=tenant_a)
    token = request_context.activate(request_context.RequestContext(request_id="req-12345678", client_ip="10.1.2.3"))
    try:
        entry = services.record(role_users["operator"], "job.viewed", job, {"field": "status"})
    finally:
        request_context.deactivate(token)
    assert (entry.actor_type, entry.actor_id) == ("user", str(role_users["operator"].pk))
    assert (entry.object_type, entry.object_id, entry.tenant_id) == ("jobs.job", str(job.pk), tenant_a.pk)
    assert (entry.request_id, entry.client_ip) == ("req-12345678", "10.1.2.3")


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_entry():
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record(None, "test.event")
        raise RuntimeError("the change failed")
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_logs SET action = 'forged'",
        "UPDATE audit_logs SET chain_hash = 'x'",
        "UPDATE audit_logs SET seq = seq + 100",
        "DELETE FROM audit_logs",
    ],
)
def test_raw_sql_cannot_change_or_delete_a_sealed_entry(sql):
    _entries(2)
    with pytest.raises(REFUSED) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "append-only" in str(caught.value)
    assert _verify().ok


@pytest.mark.django_db
def test_raw_sql_cannot_change_an_unsealed_entry_either():
    services.record(None, "test.event", payload={"a": 1})  # on_commit never fires inside the test transaction
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_logs SET payload = %s, seq = 1", ['{"a": 2}'])
    assert AuditLog.objects.get().payload == {"a": 1}


@pytest.mark.postgres
@pytest.mark.django_db
def test_truncate_is_refused_on_postgresql():
    _entries(1)
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_logs")
    assert AuditLog.objects.count() == 1


@pytest.mark.django_db
def test_a_changed_payload_is_caught_at_its_entry():
    _entries(4)
    tamper("UPDATE audit_logs SET payload = %s WHERE seq = 3", ['{"i": 99}'])
    report = _verify()
    assert report.finding.seq == 3 and "payload" in report.finding.problem


@pytest.mark.django_db
def test_a_changed_field_is_caught_even_with_payload_intact():
    _entries(4)
    tamper("UPDATE audit_logs SET actor_id = '7' WHERE seq = 2")
    report = _verify()
    assert report.finding.seq == 2 and "record hash" in report.finding.problem


@pytest.mark.django_db
def test_a_deleted_entry_shows_as_a_gap():
    _entries(4)
    tamper("DELETE FROM audit_logs WHERE seq = 2")
    report = _verify()
    assert report.finding.seq == 3 and "gap" in report.finding.problem


@pytest.mark.django_db
def test_two_swapped_entries_are_caught():
    _entries(4)
    tamper("UPDATE audit_logs SET seq = -1 WHERE seq = 2")
    tamper("UPDATE audit_logs SET seq = 2 WHERE seq = 3")
    tamper("UPDATE audit_logs SET seq = 3 WHERE seq = -1")
    assert _verify().finding.seq == 2


@pytest.mark.django_db
def test_a_forged_entry_with_recomputed_hashes_breaks_the_next_link():
    rows = _entries(4)
    forged = {**services.entry_fields(rows[1]), "action": "forged"}
    record = hashing.record_sha256(forged)
    chain = hashing.chain_hash(rows[1].prev_hash, record)
    tamper(
        "UPDATE audit_logs SET action = 'forged', record_sha256 = %s, chain_hash = %s WHERE seq = 2", [record, chain]
    )
    report = _verify()
    assert report.finding.seq == 3 and "broken link" in report.finding.problem


@pytest.mark.django_db
def test_verify_command_exits_zero_when_intact_and_names_the_first_bad_entry(capsys):
    _entries(3)
    call_command("verify_audit_chain")
    assert "intact: 3 entries" in capsys.readouterr().out
    call_command("verify_audit_chain", from_seq=2, to_seq=3)
    tamper("UPDATE audit_logs SET object_id = 'x' WHERE seq = 2")
    with pytest.raises(CommandError, match="seq 2"):
        call_command("verify_audit_chain")
    with pytest.raises(CommandError, match="--from"):
        call_command("verify_audit_chain", from_seq=3, to_seq=1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_never_fork_the_chain():
    per_writer = 40
    barrier = threading.Barrier(8)
    errors = []

    def writer(n):
        try:
            barrier.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    services.record(None, "test.concurrent", payload={"writer": n, "i": i})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    services.seal_pending()
    rows = list(AuditLog.objects.order_by("seq").values_list("seq", "prev_hash"))
    assert [seq for seq, _ in rows] == list(range(1, 8 * per_writer + 1))
    prevs = [prev for _, prev in rows]
    assert len(set(prevs)) == len(prevs), "no prev_hash repeats: the chain never forks"
    assert _verify().ok


@pytest.mark.django_db
def test_a_job_status_change_and_its_audit_entry_commit_together(role_users):
    from apps.jobs.services import change_status

    job = factories.JobFactory()
    change_status(job, "running", progress=5, actor=role_users["operator"], source="api")
    entry = AuditLog.objects.get(action="job.status.changed")
    assert entry.object_id == str(job.pk) and entry.actor_id == str(role_users["operator"].pk)
    assert entry.payload == {"from": "queued", "to": "running", "progress": 5, "source": "api", "reason": ""}
    from apps.jobs.exceptions import IllegalTransition

    with pytest.raises(IllegalTransition):
        change_status(job, "queued")
    assert AuditLog.objects.filter(action="job.status.changed").count() == 1


@pytest.mark.django_db
def test_a_bulk_action_records_each_object_and_one_summary(role_users, tenant_a):
    from apps.jobs.services import cancel_jobs

    jobs = factories.JobFactory.create_batch(3, tenant=tenant_a)
    cancel_jobs(jobs, actor=role_users["operator"], reason="arıza")
    assert AuditLog.objects.filter(action="job.status.changed").count() == 3
    summary = AuditLog.objects.get(action="job.bulk_cancel")
    assert sorted(summary.payload["cancelled"]) == sorted(j.pk for j in jobs)
