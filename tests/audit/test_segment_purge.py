"""Retention purges the audit log only in whole checkpoint segments; what remains still verifies (issue 17)."""

import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.audit import services, signatures
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditCheckpoint, AuditLog, AuditPurge
from tests.audit.test_export_and_offline_verifier import _offline_verify


def _append(n, settings):
    for i in range(n):
        services.record(("user", "7"), "test.event", payload={"i": i})
    services.seal_pending()
    return services.make_checkpoint(force=True)


@pytest.fixture
def public_pem(signing_key):
    return signatures.public_pem(signing_key.public_key())


@pytest.mark.django_db
def test_a_purged_segment_leaves_a_chain_that_verifies_in_the_database_and_offline(
    settings, signing_key, tmp_path, public_pem
):
    first = _append(5, settings)
    _append(4, settings)
    assert verify_database(public_key=signing_key.public_key()).ok
    out = tmp_path / "before.jsonl"
    call_command("export_audit", output=str(out))
    assert _offline_verify(out, public_pem).returncode == 0

    services.purge_through(first.tree_size, reason="retention", batch=2)
    assert not AuditLog.objects.filter(seq__lte=first.tree_size).exists()
    assert AuditCheckpoint.objects.filter(tree_size=first.tree_size).exists(), "the anchor checkpoint is kept"
    services.seal_pending()
    services.make_checkpoint(force=True)
    report = verify_database(public_key=signing_key.public_key())
    assert report.ok, report.finding
    assert report.first_seq == first.tree_size + 1
    call_command("verify_audit_chain")  # the command passes too (raises CommandError otherwise)
    out = tmp_path / "after.jsonl"
    call_command("export_audit", output=str(out))
    result = _offline_verify(out, public_pem)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_a_purge_must_end_at_a_checkpoint_and_nothing_above_it_can_be_deleted(settings):
    checkpoint = _append(3, settings)
    _append(2, settings)
    with pytest.raises(ValueError, match="whole segments"):
        services.purge_through(checkpoint.tree_size + 1, reason="x")
    services.purge_through(checkpoint.tree_size, reason="retention")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_logs WHERE seq = %s", [checkpoint.tree_size + 1])


@pytest.mark.django_db
def test_an_interrupted_purge_carries_on_without_skipping(settings, signing_key):
    checkpoint = _append(7, settings)
    _append(1, settings)
    services.purge_through(checkpoint.tree_size, reason="retention", batch=2, stop_after=2)
    assert AuditLog.objects.filter(seq__lte=checkpoint.tree_size).count() == 3
    assert verify_database(public_key=signing_key.public_key()).ok, "a half-done purge still verifies"
    purge = services.purge_through(checkpoint.tree_size, reason="retention", batch=2)
    assert purge.deleted == 7 and purge.finished_at is not None
    assert AuditPurge.objects.count() == 1
    assert verify_database(public_key=signing_key.public_key()).ok


@pytest.mark.django_db
def test_a_purge_through_the_witnessed_checkpoint_still_verifies_against_the_witness(
    settings, signing_key, witness_file, tmp_path, public_pem
):
    checkpoint = _append(4, settings)
    assert witness_file.exists()
    services.purge_through(checkpoint.tree_size, reason="retention")
    call_command("verify_audit_chain")
    services.seal_pending()  # the purge's own entry
    assert AuditLog.objects.get(action="audit.purged").seq == checkpoint.tree_size + 1, "the chain goes on"
    later = services.make_checkpoint(force=True)
    assert json.loads(witness_file.read_text())["tree_size"] == later.tree_size, "the witness moves forward"
    call_command("verify_audit_chain")
    out = tmp_path / "after.jsonl"
    call_command("export_audit", output=str(out))
    result = _offline_verify(out, public_pem, "--trusted-checkpoint", str(witness_file))
    assert result.returncode == 0, result.stdout + result.stderr
