"""Record schema version 2 (docs/audit.md, "Hashes (version 2)") beside version 1: new entries are hashed as
version 2, entries hashed as version 1 keep verifying with the version-1 body, in the database (both engines,
prepared rows on PostgreSQL), in exports (the one-pass reader and the general one) and in proofs; and every
tampering of either version is found, with the same finding both ways."""

import hashlib
import json

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.audit import fast_export, hashing, selectors, services, signatures, verify
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.audit.verification import verify_entries
from tests.audit import spec_verifier
from tests.audit.tampering import tamper

AWKWARD = 'çift "tırnak" \\ ters\n\t\x01\x1f\x7f İş ığ \u2028 😀'


def _netstring(text: str) -> bytes:
    data = text.encode()
    return f"{len(data)}:".encode() + data + b","


def _mixed_chain():
    """Seq 1-3 hashed as version 1 (as entries written before version 2), 4-7 as version 2, 8 as version 1
    again with text that needs JSON escapes; a checkpoint over all of them."""
    for i in range(3):
        services.record(("user", str(i)), "v1.event", None, {"i": i, "ad": "Şule"}, object_type="t", object_id=str(i))
    tamper("UPDATE audit_logs SET version = 1 WHERE seq IS NULL")  # as record() wrote them before version 2
    services.seal_pending()
    for i in range(4):
        services.record(
            ("user", "7"), "v2.event", None, {"n": [1, 2.5, None, True], "s": "İş", "i": i}, object_type="t",
            object_id=str(i), tenant_id=i or None,
        )  # fmt: skip
    services.seal_pending()
    services.record(("user", AWKWARD), AWKWARD, None, {"s": AWKWARD}, object_type="t", object_id=AWKWARD)
    tamper("UPDATE audit_logs SET version = 1 WHERE seq IS NULL")
    services.seal_pending()
    services.make_checkpoint(force=True)


def _verify_db():
    return verify_database(public_key=services.signing_key().public_key())


@pytest.mark.django_db
def test_a_new_entry_is_hashed_as_the_documented_version_2_netstrings():
    services.record(("user", "5"), "job.status.changed", None, {"b": 1, "a": "İş"}, object_type="jobs.job",
                    object_id="12", tenant_id=3)  # fmt: skip
    services.seal_pending()
    row = AuditLog.objects.get()
    assert row.version == 2
    ts = row.ts.astimezone(hashing.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = ["tezgah-audit-v2", "1", ts, "user", "5", "job.status.changed", "jobs.job", "12", row.payload_sha256,
              "3", "", ""]  # fmt: skip
    body = b"".join(_netstring(f) for f in fields)
    assert body.startswith(b"15:tezgah-audit-v2,1:1,27:")
    assert row.record_sha256 == hashlib.sha256(body).hexdigest()
    assert row.payload_sha256 == hashlib.sha256('{"a":"İş","b":1}'.encode()).hexdigest()
    assert row.chain_hash == hashlib.sha256((hashing.GENESIS_HASH + row.record_sha256).encode()).hexdigest()


def test_a_null_tenant_is_the_empty_netstring_and_wrong_types_cannot_be_hashed():
    entry = {"seq": 9, "ts": "2026-11-22T21:30:00.000000Z", "actor_type": "system", "actor_id": "", "action": "a",
             "object_type": "", "object_id": "", "payload_sha256": "0" * 64, "tenant_id": None, "request_id": "",
             "client_ip": "", "version": 2}  # fmt: skip
    body = hashing.record_bytes(entry)
    assert body == b"15:tezgah-audit-v2,1:9,27:2026-11-22T21:30:00.000000Z,6:system,0:,1:a,0:,0:,64:" + b"0" * 64 + (
        b",0:,0:,0:,"
    )
    assert hashing.record_bytes({**entry, "tenant_id": 0}) != body
    for wrong in ({"seq": True}, {"seq": "9"}, {"tenant_id": "3"}, {"actor_id": 7}, {"action": "\ud800"}):
        with pytest.raises(ValueError):
            hashing.record_bytes({**entry, **wrong})
    with pytest.raises(ValueError):  # a version that is no version
        hashing.record_bytes({**entry, "version": 3})


_TEXT = st.text(max_size=12) | st.sampled_from(["", "İş", 'a"b\\c', "\n", "😀", "\ud800"])


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(-5, 10**12) | st.booleans() | st.just("1"),
    tenant=st.none() | st.integers(-5, 10**12) | st.just("3"),
    ts=st.just("2026-11-22T21:30:00.000000Z") | st.text(max_size=30),
    texts=st.lists(_TEXT | st.integers(0, 9), min_size=8, max_size=8),
)
def test_the_one_format_version_2_body_is_the_field_by_field_definition(seq, tenant, ts, texts):
    entry = {"seq": seq, "tenant_id": tenant, "ts": ts, "version": 2,
             **dict(zip(hashing._TEXT_FIELDS_V2, texts, strict=True))}  # fmt: skip
    try:
        expected = hashing._record_bytes_v2_general(entry)
    except ValueError as exc:
        with pytest.raises(ValueError):
            hashing.record_bytes(entry)
        assert exc
        return
    assert hashing.record_bytes(entry) == expected


@pytest.mark.django_db(transaction=True)
def test_versions_1_and_2_mixed_verify_in_the_database_and_in_the_dict_walk():
    _mixed_chain()
    assert list(AuditLog.objects.order_by("seq").values_list("version", flat=True)) == [1, 1, 1, 2, 2, 2, 2, 1]
    report = _verify_db()
    assert report.ok and report.checked == 8 and report.checkpoints_checked == 1
    entries = list(selectors.chain_entries())
    assert verify_entries(iter(entries)).head_hash == report.head_hash
    if connection.vendor == "postgresql":  # the SQL-assembled bodies are the Python bodies, both versions
        rows = [r for chunk in selectors.verification_rows() for r in chunk]
        assert [r[2].encode() for r in rows] == [hashing.record_bytes(e) for e in entries]


POSTGRESQL = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL SQL, or prepared rows only")
A64 = "a" * 64


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("statements", "seq", "problem"),
    [
        (["UPDATE audit_logs SET action = 'forged' WHERE seq = 5"], 5, "record hash does not match"),
        (["UPDATE audit_logs SET actor_id = '8' WHERE seq = 4"], 4, "record hash does not match"),
        (["UPDATE audit_logs SET object_id = '' WHERE seq = 6"], 6, "record hash does not match"),
        (["UPDATE audit_logs SET tenant_id = NULL WHERE seq = 5"], 5, "record hash does not match"),
        (["UPDATE audit_logs SET tenant_id = 0 WHERE seq = 4"], 4, "record hash does not match"),
        (["UPDATE audit_logs SET request_id = 'r' WHERE seq = 7"], 7, "record hash does not match"),
        (["UPDATE audit_logs SET client_ip = '10.0.0.1' WHERE seq = 4"], 4, "record hash does not match"),
        pytest.param(
            ["UPDATE audit_logs SET ts = ts + interval '1 microsecond' WHERE seq = 6"],
            6,
            "record hash does not match",
            marks=POSTGRESQL,
        ),
        (["UPDATE audit_logs SET version = 1 WHERE seq = 5"], 5, "record hash does not match"),
        (["UPDATE audit_logs SET version = 2 WHERE seq = 2"], 2, "record hash does not match"),
        (["UPDATE audit_logs SET action = 'forged' WHERE seq = 8"], 8, "record hash does not match"),
        (["UPDATE audit_logs SET payload = '{\"i\": 9}' WHERE seq = 6"], 6, "payload does not match"),
        (['UPDATE audit_logs SET payload = \'{"i": 9, "ad": "Şule"}\' WHERE seq = 1'], 1, "payload does not match"),
        pytest.param(
            ["UPDATE audit_logs SET payload_canonical = '{\"i\":0}' WHERE seq = 7"],
            7,
            "canonical payload",
            marks=POSTGRESQL,
        ),
        (["UPDATE audit_logs SET record_sha256 = upper(record_sha256) WHERE seq = 4"], 4, "record hash does not match"),
        ([f"UPDATE audit_logs SET chain_hash = '{A64}' WHERE seq = 5"], 5, "chain_hash is not"),
        (["DELETE FROM audit_logs WHERE seq = 6"], 7, "gap or reorder"),
        # 4 and 5 swapped (seq is hashed, so the entry now at 4 no longer matches its record hash)
        (
            [
                "UPDATE audit_logs SET seq = -seq WHERE seq IN (4, 5)",
                "UPDATE audit_logs SET seq = 9 + seq WHERE seq < 0",
            ],
            4,
            "record hash does not match",
        ),
    ],
)
def test_tampering_either_version_is_found_the_same_way_by_every_walk(statements, seq, problem):
    _mixed_chain()
    for sql in statements:
        tamper(sql)
    report = _verify_db()
    assert not report.ok and problem in report.finding.problem and report.finding.seq == seq, report.finding
    plain = verify_entries(selectors.chain_entries(), checkpoints=selectors.checkpoints())
    if "canonical" not in problem:  # only the database rows carry the canonical copy
        assert (plain.finding.seq, plain.finding.problem) == (report.finding.seq, report.finding.problem)


@pytest.mark.django_db(transaction=True)
def test_a_bad_checkpoint_signature_over_version_2_entries_is_found():
    _mixed_chain()
    tamper("UPDATE audit_checkpoints SET signature = %s", ["A" * 86 + "=="])
    report = _verify_db()
    assert not report.ok and "bad checkpoint signature" in report.finding.problem


def _export(tmp_path, **filters):
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out), **filters)
    key = tmp_path / "public.pem"
    key.write_text(signatures.public_pem(services.signing_key().public_key()))
    return out, key


def _old_layout(path):
    """The same export as the exporter wrote it before issue 16's fourth step: payloads with json.dumps' spaces."""
    lines = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        if line.startswith('{"type": "entry"'):
            line = json.dumps(json.loads(line), ensure_ascii=False)
        lines.append(line)
    old = path.with_name("old.jsonl")
    old.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return old


@pytest.mark.django_db
@pytest.mark.parametrize("filters", [{}, {"action": "v2.event"}])
def test_exports_of_both_versions_verify_in_one_pass_in_the_new_and_the_old_layout(tmp_path, filters):
    _mixed_chain()
    out, key = _export(tmp_path, **filters)
    public = signatures.load_public_key(key.read_text())
    entry_lines = [line for line in out.read_text(encoding="utf-8").split("\n")[:-1] if '"type": "entry"' in line]
    assert entry_lines
    for line in entry_lines:  # the payload written as its canonical JSON, the bytes payload_sha256 is over
        span = line[line.index('"payload": ') + len('"payload": ') : line.index(', "payload_sha256": ')]
        assert span.encode() == hashing.canonical_json(json.loads(line)["payload"])
    for path in (out, _old_layout(out)):
        assert fast_export.verify_export_fast(path, public), path.name  # proven intact in one pass
        assert verify.verify_export_general(path, public) is None
        assert verify.main([str(path), "--public-key", str(key)]) == 0
        assert spec_verifier.verify_export(path.read_text(encoding="utf-8"), public) is None


def _outcome(check, path, public):
    """What a reader says: None (intact) or the problem (a malformed line is raised, as main() prints it)."""
    try:
        return check(path, public)
    except verify.Malformed as exc:
        return str(exc)


def _edit(path, seq, old, new):
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    i = next(i for i, line in enumerate(lines) if f'"seq": {seq},' in line and '"type": "entry"' in line)
    assert old in lines[i]
    lines[i] = lines[i].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: _edit(p, 5, '"action": "v2.event"', '"action": "v2.evenT"'), "line 6 (seq 5): changed content"),
        (lambda p: _edit(p, 2, '"action": "v1.event"', '"action": "v1.evenT"'), "line 3 (seq 2): changed content"),
        (lambda p: _edit(p, 6, '"i":2', '"i":3'), "line 7 (seq 6): changed content: the payload does not match"),
        (lambda p: _edit(p, 6, '"i":2', '"i": 2'), None),  # another spacing of the same payload: still intact
        (lambda p: _edit(p, 1, '"i":0', '"i":1'), "line 2 (seq 1): changed content: the payload does not match"),
        (lambda p: _edit(p, 4, '"tenant_id": null', '"tenant_id": 0'), "line 5 (seq 4): changed content"),
        (lambda p: _edit(p, 7, '"version": 2', '"version": 1'), "line 8 (seq 7): changed content"),
        (lambda p: _edit(p, 4, '"i":0', '"i":0 '), None),  # JSON's spaces: the same payload
        (lambda p: _edit(p, 5, '"s":"İş"', '"s":"\\u0130\\u015f"'), None),  # escaped, the same text
        (lambda p: _edit(p, 5, '"s":"İş"', '"s":"I\\u015f"'), "line 6 (seq 5): changed content"),
        (lambda p: _edit(p, 5, '"i":1', '"i":1,"i":1'), "line 6 is not JSON"),
    ],
)
def test_a_changed_export_line_of_either_version_is_named_by_the_general_reader(tmp_path, change, problem):
    _mixed_chain()
    out, key = _export(tmp_path)
    public = signatures.load_public_key(key.read_text())
    change(out)
    general = _outcome(verify.verify_export_general, out, public)
    assert _outcome(verify.verify_export, out, public) == general
    if problem is None:
        assert general is None and fast_export.verify_export_fast(out, public)
        return
    assert not fast_export.verify_export_fast(out, public)
    assert general is not None and general.startswith(problem), general


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["drop", "swap", "signature", "duplicate", "cut"])
def test_a_removed_reordered_or_duplicated_line_or_a_bad_signature_is_never_proven_intact(tmp_path, how):
    _mixed_chain()
    out, key = _export(tmp_path)
    public = signatures.load_public_key(key.read_text())
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    if how == "drop":
        del lines[5]
    elif how == "swap":
        lines[4], lines[5] = lines[5], lines[4]
    elif how == "duplicate":
        lines.insert(5, lines[5])
    elif how == "cut":
        lines = lines[:-2] + lines[-1:]  # the checkpoint line removed: the file still verifies (documented)
    else:
        i = next(i for i, line in enumerate(lines) if '"type": "checkpoint"' in line)
        cp = json.loads(lines[i])
        cp["signature"] = cp["signature"][:10] + ("A" if cp["signature"][10] != "A" else "B") + cp["signature"][11:]
        lines[i] = json.dumps(cp)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    general = _outcome(verify.verify_export_general, out, public)
    assert _outcome(verify.verify_export, out, public) == general
    assert fast_export.verify_export_fast(out, public) is (general is None)
    if how != "cut":
        assert general is not None
    if how == "signature":
        assert "bad checkpoint signature" in general


@pytest.mark.django_db
def test_an_inclusion_proof_of_each_version_verifies(tmp_path, capsys):
    _mixed_chain()
    public = services.signing_key().public_key()
    for seq in (2, 5, 8):
        bundle = selectors.inclusion_proof_bundle(AuditLog.objects.get(seq=seq).pk)
        assert bundle["entry"]["version"] == (2 if 4 <= seq <= 7 else 1)
        assert verify.verify_proof(bundle, public) is None
        assert spec_verifier.verify_proof(bundle, public) is None
        changed = {**bundle, "entry": {**bundle["entry"], "action": "forged"}}
        assert verify.verify_proof(changed, public) == "the entry's fields do not match its record hash"
