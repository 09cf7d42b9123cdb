"""Exports and proofs are checked by `python -m apps.audit.verify` in a process without Django."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.audit import services, signatures
from apps.audit.models import AuditLog

ROOT = Path(__file__).resolve().parents[2]


def _offline_verify(path, public_pem, *extra):
    key_file = path.parent / "public.pem"
    key_file.write_text(public_pem)
    # The verifier may only use the standard library and cryptography: no Django settings in its environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    code = "import sys, runpy; sys.modules['django'] = None; runpy.run_module('apps.audit.verify', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", code, str(path), "--public-key", str(key_file), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _chain(n=6):
    for i in range(n):
        services.record(("user", str(i % 2)), "job.status.changed" if i % 2 else "login", None, {"i": i, "ad": "Şule"})
    services.seal_pending()
    services.make_checkpoint(force=True)


@pytest.fixture
def public_pem(signing_key):
    return signatures.public_pem(signing_key.public_key())


@pytest.mark.django_db
def test_a_full_export_verifies_offline(tmp_path, public_pem):
    _chain()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    result = _offline_verify(out, public_pem)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert AuditLog.objects.filter(action="audit.exported").exists(), "the export itself is audited"


@pytest.mark.django_db
def test_a_filtered_export_hides_other_entries_but_still_verifies(tmp_path, public_pem):
    _chain()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out), action="login")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    full = [line for line in lines if line.get("type") == "entry"]
    stubs = [line for line in lines if line.get("type") == "hash"]
    assert {e["action"] for e in full} == {"login"} and stubs
    assert all("payload" not in s and "action" not in s for s in stubs)
    assert _offline_verify(out, public_pem).returncode == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("edit", "changed content"),
        ("drop_middle", "gap"),
        ("drop_tail", "end line"),
        ("swap", "gap or reorder"),
    ],
)
def test_a_tampered_export_fails_offline(tmp_path, public_pem, how, expected):
    _chain()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    lines = out.read_text().splitlines()
    entry_rows = [i for i, line in enumerate(lines) if '"type": "entry"' in line]
    if how == "edit":
        lines[entry_rows[2]] = lines[entry_rows[2]].replace('"Şule"', '"Sule"')
    elif how == "drop_middle":
        del lines[entry_rows[2]]
    elif how == "drop_tail":
        lines = lines[: entry_rows[-1]]
    elif how == "swap":
        lines[entry_rows[1]], lines[entry_rows[2]] = lines[entry_rows[2]], lines[entry_rows[1]]
    out.write_text("\n".join(lines) + "\n")
    result = _offline_verify(out, public_pem)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout


@pytest.mark.django_db
def test_an_export_checked_with_another_key_fails(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _chain()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    other = signatures.public_pem(Ed25519PrivateKey.generate().public_key())
    result = _offline_verify(out, other)
    assert result.returncode == 1 and "bad checkpoint signature" in result.stdout


@pytest.mark.django_db
def test_an_inclusion_proof_verifies_offline_and_fails_for_a_changed_entry(tmp_path, public_pem, capsys):
    _chain()
    entry = AuditLog.objects.get(seq=4)
    call_command("audit_proof", str(entry.pk))
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["tree_size"] == 6 and len(bundle["proof"]) <= 3
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(bundle))
    assert _offline_verify(proof_file, public_pem).returncode == 0
    # A changed entry with its record hash recomputed still cannot reach the signed root.
    from apps.audit import hashing

    bundle["entry"]["action"] = "forged"
    bundle["entry"]["record_sha256"] = hashing.record_sha256(bundle["entry"])
    proof_file.write_text(json.dumps(bundle))
    result = _offline_verify(proof_file, public_pem)
    assert result.returncode == 1 and "inclusion proof" in result.stdout


@pytest.mark.django_db
def test_audit_proof_explains_an_entry_no_checkpoint_covers(capsys):
    from django.core.management import CommandError

    services.record(None, "login")
    services.seal_pending()
    with pytest.raises(CommandError, match="no checkpoint"):
        call_command("audit_proof", str(AuditLog.objects.get().pk))
    with pytest.raises(CommandError, match="no audit entry"):
        call_command("audit_proof", "999999")


@pytest.mark.django_db
def test_export_refuses_a_date_without_a_zone():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="date-from"):
        call_command("export_audit", date_from="2026-11-01")


@pytest.mark.django_db
def test_export_audit_writes_csv_too(tmp_path):
    import csv

    _chain()
    out = tmp_path / "audit.csv"
    call_command("export_audit", output=str(out), format="csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["seq"] for r in rows if r["type"] == "entry"] == ["1", "2", "3", "4", "5", "6"]
    assert AuditLog.objects.get(action="audit.exported").payload["format"] == "csv"


@pytest.mark.django_db
def test_the_public_key_command_prints_the_key_that_verifies(tmp_path, capsys, signing_key):
    _chain()
    call_command("audit_public_key")
    printed = capsys.readouterr().out
    assert printed == signatures.public_pem(signing_key.public_key())
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    assert _offline_verify(out, printed).returncode == 0
