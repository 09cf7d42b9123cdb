"""docs/audit.md is enough to write a verifier: tests/audit/spec_verifier.py, written from it alone and run
in a process where apps.audit cannot be imported, accepts real exports and proofs and refuses tampered ones."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.audit import services, signatures
from apps.audit.models import AuditLog

SPEC = Path(__file__).with_name("spec_verifier.py")


def _spec_verify(*args):
    code = (
        "import sys, runpy; sys.modules['apps'] = None; sys.modules['django'] = None; "
        f"sys.argv = ['spec', *{[str(a) for a in args]!r}]; runpy.run_path({str(SPEC)!r}, run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


@pytest.fixture
def chain(settings, tmp_path, signing_key):
    """11 entries, sealed one by one, AUDIT_CHECKPOINT_EVERY = 4: checkpoints at 1 (the first is due at once),
    5 and 9 (once at least 4 were added); 10 and 11 are not covered yet. Tenants, Turkish text, nesting."""
    settings.AUDIT_CHECKPOINT_EVERY = 4
    for i in range(11):
        payload = {"i": i, "ad": "Işıl Güneş", "nested": {"b": [1, None, True]}}
        action = "login" if i % 2 else "job.status.changed"
        services.record(("user", str(i % 3)), action, None, payload, tenant_id=i % 2 or None)
        services.seal_pending()
        services.make_checkpoint()
    key = tmp_path / "public.pem"
    key.write_text(signatures.public_pem(signing_key.public_key()))
    return key


def test_the_spec_verifier_imports_nothing_of_the_project():
    tree = ast.parse(SPEC.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= {"base64", "hashlib", "json", "sys", "cryptography"}


@pytest.mark.django_db
@pytest.mark.parametrize("action", [None, "login"])
def test_the_spec_verifier_accepts_a_real_export_full_or_filtered(chain, tmp_path, action, witness_file):
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out), action=action)
    kinds = {json.loads(line).get("type") for line in out.read_text().splitlines()}
    assert {"entry", "checkpoint", "end"} <= kinds and (("hash" in kinds) == bool(action))
    result = _spec_verify(out, chain, witness_file)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("edit_payload", "payload hash"),
        ("edit_field", "record hash"),
        ("drop_entry", "gap"),
        ("cut_tail", "no end line"),
        ("cut_before_last_checkpoint", "missing tail"),
    ],
)
def test_the_spec_verifier_refuses_what_the_real_one_refuses(chain, tmp_path, how, expected, witness_file):
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    if how == "edit_payload":
        lines[3]["payload"]["ad"] = "Isil"
    elif how == "edit_field":
        lines[3]["client_ip"] = "10.0.0.1"
    elif how == "drop_entry":
        del lines[3]
    elif how == "cut_tail":
        lines = lines[:-1]
    elif how == "cut_before_last_checkpoint":  # the attack of issue 11: only the witness shows it
        lines = [x for x in lines if x.get("type") != "end" and x.get("seq", 0) <= 8 and x.get("tree_size", 0) <= 8]
        lines[0]["last_seq"] = 8
        lines.append({"type": "end", "entries": 8, "hashes": 0})
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    result = _spec_verify(out, chain, witness_file)
    assert result.returncode == 1 and expected in result.stdout, result.stdout + result.stderr
    if how == "cut_before_last_checkpoint":
        assert _spec_verify(out, chain).returncode == 0, "without the witness the cut cannot be seen"


@pytest.mark.django_db
@pytest.mark.parametrize("seq", [1, 2, 5, 8, 9])
def test_the_spec_verifier_checks_a_real_inclusion_proof(chain, tmp_path, capsys, seq):
    call_command("audit_proof", str(AuditLog.objects.get(seq=seq).pk))
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["tree_size"] == min(size for size in (1, 5, 9) if size >= seq), "the covering checkpoint"
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(bundle, indent=2))
    result = _spec_verify(proof, chain)
    assert result.returncode == 0, result.stdout + result.stderr
    bundle["proof"] = list(reversed(bundle["proof"]))
    proof.write_text(json.dumps(bundle, indent=2))
    if len(bundle["proof"]) > 1 and bundle["proof"] != list(reversed(bundle["proof"])):
        assert _spec_verify(proof, chain).returncode == 1, "the path's order matters"


@pytest.mark.django_db
def test_an_entry_no_checkpoint_covers_yet_has_no_proof(chain):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no checkpoint covers entry"):
        call_command("audit_proof", str(AuditLog.objects.get(seq=10).pk))
