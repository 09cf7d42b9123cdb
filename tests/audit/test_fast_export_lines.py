"""The offline verifier's fast reading of entry lines (verify._fast_entry) gives exactly the entry the general
reader gives (strict JSON, then entry_problem) for lines in export_lines' own layout, and leaves every other
line to the general reader."""

import json

import pytest
from django.core.management import call_command

from apps.audit import services, verify

AWKWARD = 'çift "tırnak" \\ ters\n\t\x01 İş 😀'


def _export(tmp_path):
    services.record(("user", "7"), "login", None, {"i": 1, "ad": "Şule", "n": [1.5, None, True]}, tenant_id=3)
    services.record(("user", AWKWARD), AWKWARD, None, {"s": AWKWARD}, object_type="t", object_id=AWKWARD)
    services.record(None, "plain", None, {})
    services.seal_pending()
    services.make_checkpoint(force=True)
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    return [line + "\n" for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.django_db
def test_fast_entries_are_the_general_readers_entries_and_escaped_lines_are_left_to_it(tmp_path):
    lines = [line for line in _export(tmp_path) if line.startswith('{"type": "entry"')]
    fast = [verify._fast_entry(line) for line in lines]
    general = [verify.loads(line) for line in lines]
    assert fast[0] == general[0] and fast[2] == general[2]  # the plain lines: read fast, the same entry
    assert all(verify.entry_problem(g) is None for g in general)
    assert fast[1] is None  # escaped text: the general reader's
    assert [type(v) for v in fast[0].values()] == [type(v) for v in general[0].values()]


@pytest.mark.parametrize(
    "change",
    [
        lambda e: {**e, "seq": 0},
        lambda e: {**e, "version": 3},
        lambda e: {**e, "id": True},
        lambda e: {**e, "ts": "2026-11-22T21:30:00Z"},
        lambda e: {**e, "chain_hash": "A" * 64},
        lambda e: {**e, "tenant_id": "3"},
        lambda e: {"extra": 1, **e},
    ],
)
@pytest.mark.django_db
def test_lines_that_are_not_in_the_exports_layout_or_wrong_are_not_read_fast(tmp_path, change):
    entry = verify.loads(_export(tmp_path)[1])
    line = json.dumps(change(entry), ensure_ascii=False) + "\n"
    assert verify._fast_entry(line) is None


@pytest.mark.parametrize(
    "payload", ['{"a": 1, "a": 2}', '{"a": NaN}', '{"a": 1e999}', '{"a": 1}, "x": {"b": 2}', "[" * 100000]
)
@pytest.mark.django_db
def test_a_payload_the_strict_reader_refuses_is_not_read_fast(tmp_path, payload):
    line = _export(tmp_path)[1]
    start = line.index('"payload": ') + len('"payload": ')
    end = line.index(', "payload_sha256": ')
    assert verify._fast_entry(line[:start] + payload + line[end:]) is None
