import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from apps.audit import hashing, selectors, services, signatures
from apps.audit.merkle import root
from apps.audit.models import AuditLog
from apps.audit.verification import verify_entries
from tests.audit.tampering import tamper


def _append(n):
    for i in range(n):
        services.record(None, "test.event", payload={"i": i})
    services.seal_pending()


def _verify(public_key):
    return verify_entries(selectors.chain_entries(), checkpoints=selectors.checkpoints(), public_key=public_key)


@pytest.mark.django_db
def test_a_checkpoint_signs_size_head_and_the_rfc6962_root(signing_key, caplog):
    _append(5)
    with caplog.at_level(logging.INFO, logger="apps.audit.checkpoints"):
        checkpoint = services.make_checkpoint(force=True)
    leaves = [bytes.fromhex(h) for h in AuditLog.objects.order_by("seq").values_list("record_sha256", flat=True)]
    assert checkpoint.tree_size == 5
    assert checkpoint.head_hash == AuditLog.objects.get(seq=5).chain_hash
    assert checkpoint.merkle_root == root(leaves).hex()
    assert signatures.verify(signing_key.public_key(), checkpoint.statement_fields())
    assert checkpoint.signature in caplog.text, "the checkpoint is also in the application log"


@pytest.mark.django_db
def test_checkpoints_are_made_every_n_entries_and_extend_the_previous_tree(settings, signing_key):
    settings.AUDIT_CHECKPOINT_EVERY = 3
    _append(2)
    first = services.make_checkpoint()
    assert first is not None, "the first checkpoint is due at once"
    _append(2)
    assert services.make_checkpoint() is None, "only 2 new entries: not due"
    _append(1)
    second = services.make_checkpoint()
    assert second.tree_size == 5
    leaves = [bytes.fromhex(h) for h in AuditLog.objects.order_by("seq").values_list("record_sha256", flat=True)]
    assert second.merkle_root == root(leaves).hex()
    report = _verify(signing_key.public_key())
    assert report.ok and report.checkpoints_checked == 2


@pytest.mark.django_db
def test_a_tail_cut_after_a_checkpoint_is_caught(signing_key):
    _append(4)
    services.make_checkpoint(force=True)
    tamper("DELETE FROM audit_logs WHERE seq >= 3")
    report = _verify(signing_key.public_key())
    assert "missing tail" in report.finding.problem


@pytest.mark.django_db
def test_a_chain_rewritten_with_every_hash_recomputed_is_caught_by_the_checkpoint(signing_key):
    _append(4)
    services.make_checkpoint(force=True)
    prev = AuditLog.objects.get(seq=1).chain_hash
    for row in AuditLog.objects.filter(seq__gte=2).order_by("seq"):
        fields = services.entry_fields(row)
        if row.seq == 2:
            fields["action"] = "forged"
        record = hashing.record_sha256(fields)
        chain = hashing.chain_hash(prev, record)
        tamper(
            "UPDATE audit_logs SET action = %s, record_sha256 = %s, prev_hash = %s, chain_hash = %s WHERE seq = %s",
            [fields["action"], record, prev, chain, row.seq],
        )
        prev = chain
    assert verify_entries(selectors.chain_entries()).ok, "the plain chain alone is fooled"
    report = _verify(signing_key.public_key())
    assert "checkpoint at 4" in report.finding.problem


@pytest.mark.django_db
def test_a_checkpoint_re_signed_with_another_key_is_caught(signing_key):
    _append(3)
    checkpoint = services.make_checkpoint(force=True)
    forged = Ed25519PrivateKey.generate()
    statement = checkpoint.statement_fields()
    forged_signature = signatures.sign(forged, statement)
    tamper("UPDATE audit_checkpoints SET signature = %s WHERE id = %s", [forged_signature, checkpoint.pk])
    report = _verify(signing_key.public_key())
    assert "bad checkpoint signature" in report.finding.problem


@pytest.mark.django_db
def test_verify_command_checks_checkpoints(signing_key, capsys):
    _append(3)
    services.make_checkpoint(force=True)
    call_command("verify_audit_chain")
    assert "1 checkpoints match" in capsys.readouterr().out
    tamper("DELETE FROM audit_logs WHERE seq = 3")
    with pytest.raises(CommandError, match="missing tail"):
        call_command("verify_audit_chain")


@pytest.mark.django_db
def test_production_without_a_signing_key_says_what_to_set(settings):
    settings.AUDIT_SIGNING_KEY = ""
    settings.DEBUG = False
    with pytest.raises(CommandError, match="AUDIT_SIGNING_KEY"):
        call_command("verify_audit_chain")


@pytest.mark.django_db
def test_verification_resumes_after_a_checkpoint_and_still_checks_merkle_roots(settings, signing_key):
    from apps.audit.db_verification import verify_database

    settings.AUDIT_CHECKPOINT_EVERY = 3
    for _ in range(3):
        _append(3)
        services.make_checkpoint()
    report = verify_database(from_seq=4, public_key=signing_key.public_key())
    assert report.ok and report.first_seq == 4 and report.checkpoints_checked == 2
    tamper("UPDATE audit_checkpoints SET merkle_root = %s WHERE tree_size = 9", ["0" * 64])
    # A changed root also breaks its signature, so check the walk itself with the key check left out.
    report = verify_database(from_seq=4)
    assert "Merkle root differs" in report.finding.problem


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tampered_seq", [None, 2, 8, 14])
def test_a_walk_split_across_processes_finds_what_a_single_walk_finds(settings, signing_key, tampered_seq):
    from apps.audit.db_verification import verify_database

    settings.AUDIT_CHECKPOINT_EVERY = 4
    for _ in range(4):
        _append(4)
        services.make_checkpoint()
    _append(2)  # a tail after the last checkpoint
    if tampered_seq:
        tamper("UPDATE audit_logs SET object_id = 'x' WHERE seq = %s", [tampered_seq])
    single = verify_database(public_key=signing_key.public_key())
    split = verify_database(public_key=signing_key.public_key(), processes=3)
    assert (split.ok, split.checked if split.ok else split.finding.seq) == (
        single.ok, single.checked if single.ok else single.finding.seq
    )  # fmt: skip
    if tampered_seq is None:
        assert split.checked == 18 and split.checkpoints_checked == 4
    else:
        assert split.finding.seq == tampered_seq


@pytest.mark.django_db
def test_verify_can_resume_after_the_latest_checkpoint(signing_key, capsys):
    _append(3)
    services.make_checkpoint(force=True)
    _append(2)
    call_command("verify_audit_chain", resume=True)
    assert "2 entries (seq 4..5)" in capsys.readouterr().out
    tamper("UPDATE audit_logs SET action = 'x' WHERE seq = 5")
    with pytest.raises(CommandError, match="seq 5"):
        call_command("verify_audit_chain", resume=True)
    with pytest.raises(CommandError, match="exclude"):
        call_command("verify_audit_chain", resume=True, from_seq=2)
