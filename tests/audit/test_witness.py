"""Checkpoints cannot be deleted, and a checkpoint kept outside the database (a witness) catches a cut tail."""

import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.audit import services, signatures, witness
from apps.audit.models import AuditCheckpoint, AuditLog
from tests.audit.tampering import tamper
from tests.audit.test_export_and_offline_verifier import _offline_verify

REFUSED = (DatabaseError, IntegrityError)


def _append(n):
    for i in range(n):
        services.record(None, "test.event", payload={"i": i})
    services.seal_pending()


def _two_checkpoints():
    """Entries 1..3 under a checkpoint at 3, entries 4..6 under the latest checkpoint at 6."""
    _append(3)
    services.make_checkpoint(force=True)
    _append(3)
    return services.make_checkpoint(force=True)


def _cut_database_tail_and_its_checkpoint():
    """The attack: as the tables' owner, drop the guards, delete seq 4..6 and the checkpoint that covered them."""
    tamper("DELETE FROM audit_logs WHERE seq > 3")
    tamper("DELETE FROM audit_checkpoints WHERE tree_size > 3")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET tree_size = 2",
        "UPDATE audit_checkpoints SET signature = 'x'",
        "UPDATE audit_checkpoints SET head_hash = merkle_root",
        "UPDATE audit_checkpoints SET frontier = '{}'",
        "UPDATE audit_checkpoints SET tsa_token = 'AAAA', merkle_root = head_hash",
    ],
)
def test_raw_sql_cannot_change_or_delete_a_checkpoint(sql):
    _append(3)
    services.make_checkpoint(force=True)
    with pytest.raises(REFUSED) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "audit_checkpoints is append-only" in str(caught.value)
    assert AuditCheckpoint.objects.get().tree_size == 3


@pytest.mark.django_db
def test_a_checkpoint_gets_its_timestamp_token_once_and_never_again():
    _append(2)
    checkpoint = services.make_checkpoint(force=True)
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(tsa_token="AAAA")
    with pytest.raises(REFUSED), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(tsa_token="BBBB")
    with pytest.raises(REFUSED), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(tsa_token="")
    assert AuditCheckpoint.objects.get().tsa_token == "AAAA"


@pytest.mark.postgres
@pytest.mark.django_db
def test_truncating_the_checkpoints_is_refused_on_postgresql():
    _append(1)
    services.make_checkpoint(force=True)
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_checkpoints")
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_the_sealer_logs_every_checkpoint_and_writes_the_latest_to_the_witness_file(witness_file, caplog):
    _append(2)
    with caplog.at_level(logging.INFO, logger="apps.audit.checkpoints"):
        first = services.make_checkpoint(force=True)
        _append(2)
        second = services.make_checkpoint(force=True)
    logged = [witness.parse(r.getMessage()) for r in caplog.records if r.name == "apps.audit.checkpoints"]
    assert [w["tree_size"] for w in logged] == [2, 4]
    assert logged[1] == services.checkpoint_witness(second) == witness.read(witness_file)
    assert witness.read(witness_file)["signature"] == second.signature != first.signature
    # The JSON application log line itself is a witness too (what a log shipper keeps).
    json_line = json.dumps({"logger": "apps.audit.checkpoints", "msg": caplog.records[-1].getMessage()})
    assert witness.parse(json_line) == logged[1]


@pytest.mark.django_db
def test_audit_checkpoint_prints_the_latest_checkpoint_as_witness_json(capsys, signing_key):
    with pytest.raises(CommandError, match="no audit checkpoint"):
        call_command("audit_checkpoint")
    _append(3)
    call_command("audit_checkpoint", new=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed == services.checkpoint_witness(AuditCheckpoint.objects.get())
    assert printed["type"] == "checkpoint" and printed["tree_size"] == 3
    assert signatures.verify(signing_key.public_key(), printed)


@pytest.mark.django_db
def test_a_cut_tail_with_its_checkpoint_deleted_fails_against_the_witness_file(capsys):
    """Regression (issue 11): with the triggers dropped, deleting the tail and the last checkpoint row left
    verify_audit_chain reporting OK. The sealer's witness file still has the deleted checkpoint."""
    _two_checkpoints()
    call_command("verify_audit_chain")
    assert "reaches the witnessed checkpoint at 6" in capsys.readouterr().out
    _cut_database_tail_and_its_checkpoint()
    with pytest.raises(CommandError, match="missing tail before the witnessed checkpoint: the witness covers 6"):
        call_command("verify_audit_chain")
    with pytest.raises(CommandError, match="witnessed checkpoint"):
        call_command("verify_audit_chain", resume=True)


@pytest.mark.django_db
def test_a_cut_tail_fails_against_a_checkpoint_given_on_the_command_line(tmp_path, witness_file, settings, capsys):
    _two_checkpoints()
    call_command("audit_checkpoint")
    kept = tmp_path / "kept-elsewhere.json"
    kept.write_text(capsys.readouterr().out)
    settings.AUDIT_WITNESS_FILE = ""  # no witness file on this host: only the copy ops kept
    _cut_database_tail_and_its_checkpoint()
    call_command("verify_audit_chain")  # what the chain alone can show: nothing is wrong
    with pytest.raises(CommandError, match="missing tail before the witnessed checkpoint"):
        call_command("verify_audit_chain", trusted_checkpoint=str(kept))


@pytest.mark.django_db
def test_a_cut_tail_regrown_past_the_witness_is_caught_and_the_witness_is_not_moved(witness_file, caplog):
    _two_checkpoints()
    _cut_database_tail_and_its_checkpoint()
    _append(5)  # the chain grows again, past the witnessed size, with other entries
    with caplog.at_level(logging.ERROR, logger="apps.audit.checkpoints"):
        services.make_checkpoint(force=True)
    assert "does not extend the witnessed checkpoint" in caplog.text
    assert witness.read(witness_file)["tree_size"] == 6, "the witness file keeps the checkpoint the chain lost"
    with pytest.raises(CommandError, match="witnessed checkpoint at 6 entries: the chain's head hash differs"):
        call_command("verify_audit_chain")


@pytest.mark.django_db
def test_a_witness_at_the_head_or_before_it_verifies(tmp_path, capsys):
    _two_checkpoints()
    _append(2)  # entries after the witness are what it cannot vouch for: still fine
    call_command("verify_audit_chain", resume=True)
    assert "reaches the witnessed checkpoint at 6" in capsys.readouterr().out
    older = tmp_path / "older.json"
    older.write_text(json.dumps(services.checkpoint_witness(AuditCheckpoint.objects.get(tree_size=3))))
    call_command("verify_audit_chain", trusted_checkpoint=str(older), from_seq=2, to_seq=5)
    assert "reaches the witnessed checkpoint at 3" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_witness_with_another_head_at_the_same_size_is_a_rewritten_chain(tmp_path, signing_key):
    _two_checkpoints()
    forged = services.checkpoint_witness(AuditCheckpoint.objects.get(tree_size=6))
    forged["head_hash"] = "ab" * 32
    forged["signature"] = signatures.sign(signing_key, forged)
    path = tmp_path / "forked.json"
    path.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="head hash differs"):
        call_command("verify_audit_chain", trusted_checkpoint=str(path))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "not JSON"),
        ("null", "must be a JSON object"),
        ('{"type": "checkpoint"}', "checkpoint without"),
        ("not-signed", "signature does not verify"),
    ],
)
def test_an_unusable_trusted_checkpoint_is_an_error_not_a_pass(tmp_path, content, expected):
    _two_checkpoints()
    path = tmp_path / "witness.json"
    if content == "not-signed":
        statement = services.checkpoint_witness(AuditCheckpoint.objects.get(tree_size=6))
        content = json.dumps({**statement, "signature": "A" * 86 + "=="})
    path.write_text(content)
    with pytest.raises(CommandError, match=expected):
        call_command("verify_audit_chain", trusted_checkpoint=str(path))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("verify_audit_chain", trusted_checkpoint=str(tmp_path / "missing.json"))


def _export_cut_before_the_last_checkpoint(path):
    """The attack on a forensic export: drop seq 4..6 and the checkpoint at 6, fix the end line and header."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [
        item
        for item in lines
        if not (item.get("type") in ("entry", "hash") and item["seq"] > 3)
        and not (item.get("type") == "checkpoint" and item["tree_size"] > 3)
    ]
    kept[0]["last_seq"] = 3
    kept[-1] = {"type": "end", "entries": sum(1 for i in kept if i.get("type") == "entry"), "hashes": 0}
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in kept))


@pytest.mark.django_db
def test_an_export_cut_before_the_last_checkpoint_fails_offline_against_a_witness(tmp_path, witness_file, signing_key):
    """Regression (issue 11): an export cut before its last checkpoint, with that checkpoint removed and the end
    line fixed, passed the offline verifier. Against the sealer's witness it fails."""
    _two_checkpoints()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    public_pem = signatures.public_pem(signing_key.public_key())
    intact = _offline_verify(out, public_pem, "--trusted-checkpoint", str(witness_file))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "reaches the trusted checkpoint at 6" in intact.stdout
    _export_cut_before_the_last_checkpoint(out)
    assert _offline_verify(out, public_pem).returncode == 0, "without a witness the cut cannot be seen"
    result = _offline_verify(out, public_pem, "--trusted-checkpoint", str(witness_file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "missing tail before the witnessed checkpoint: the witness covers 6 entries" in result.stdout


@pytest.mark.django_db
def test_an_earlier_exports_checkpoint_line_is_a_witness_for_a_later_export(tmp_path, signing_key):
    _append(3)
    services.make_checkpoint(force=True)
    earlier = tmp_path / "earlier.jsonl"
    call_command("export_audit", output=str(earlier))
    checkpoint_line = next(line for line in earlier.read_text().splitlines() if '"checkpoint"' in line)
    kept = tmp_path / "kept.json"
    kept.write_text(checkpoint_line)
    _append(3)
    services.make_checkpoint(force=True)
    later = tmp_path / "later.jsonl"
    call_command("export_audit", output=str(later))
    public_pem = signatures.public_pem(signing_key.public_key())
    assert _offline_verify(later, public_pem, "--trusted-checkpoint", str(kept)).returncode == 0
    # An export older than the witness does not reach it: pass the witness held when the export was made.
    forged = {**json.loads(checkpoint_line), "head_hash": "cd" * 32}
    forged["signature"] = signatures.sign(signing_key, forged)
    kept.write_text(json.dumps(forged))
    result = _offline_verify(later, public_pem, "--trusted-checkpoint", str(kept))
    assert result.returncode == 1 and "head hash differs" in result.stdout, result.stdout


@pytest.mark.django_db
def test_an_unusable_trusted_checkpoint_cannot_verify_offline(tmp_path, signing_key):
    _append(2)
    services.make_checkpoint(force=True)
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    public_pem = signatures.public_pem(signing_key.public_key())
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "checkpoint", "tree_size": "6"}')
    result = _offline_verify(out, public_pem, "--trusted-checkpoint", str(bad))
    assert result.returncode == 2 and "checkpoint without" in result.stderr and "Traceback" not in result.stderr
    result = _offline_verify(out, public_pem, "--trusted-checkpoint", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot be read" in result.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_walk_split_across_processes_checks_the_witness(settings, witness_file):
    settings.AUDIT_CHECKPOINT_EVERY = 4
    for _ in range(4):
        _append(4)
        services.make_checkpoint()
    call_command("verify_audit_chain", processes=3)
    tamper("DELETE FROM audit_logs WHERE seq > 12")
    tamper("DELETE FROM audit_checkpoints WHERE tree_size > 12")
    with pytest.raises(CommandError, match="witnessed checkpoint"):
        call_command("verify_audit_chain", processes=3)
    assert AuditLog.objects.count() == 12


@pytest.mark.django_db
def test_the_admins_verify_now_page_checks_the_witness_file_too(client, role_users, witness_file):
    from django.urls import reverse

    from tests.conftest import verified_client

    _two_checkpoints()
    verified_client(client, role_users["auditor"])
    verify = reverse("admin:audit_auditlog_verify")
    assert "Intact: 6 entries" in client.get(verify, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    _cut_database_tail_and_its_checkpoint()
    page = client.get(verify, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Broken at seq 3" in page and "missing tail before the witnessed checkpoint" in page
    witness_file.write_text("garbage")
    page = client.get(verify, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "audit witness file" in page and "unusable" in page


@pytest.mark.django_db
def test_a_later_witness_written_by_another_sealer_is_kept_without_an_alarm(witness_file, caplog):
    _append(2)
    older = services.make_checkpoint(force=True)
    _append(2)
    services.make_checkpoint(force=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apps.audit.checkpoints"):
        services._update_witness_file(older)  # the slower of two writers comes second
    assert witness.read(witness_file)["tree_size"] == 4
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.django_db
def test_the_entry_at_the_witnessed_size_deleted_is_caught():
    _two_checkpoints()
    _append(1)
    tamper("DELETE FROM audit_logs WHERE seq = 6")
    with pytest.raises(CommandError, match="no entry at seq 6"):
        call_command("verify_audit_chain", resume=True)
