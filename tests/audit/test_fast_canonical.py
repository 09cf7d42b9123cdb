"""The fast canonical forms of verification are the version-1 canonical JSON, byte for byte (docs/audit.md)."""

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.audit import hashing, merkle, verification

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_fast_payload_form_is_canonical_json(value):
    assert hashing.canonical_json_fast(value) == hashing.canonical_json(value)


def test_the_fast_payload_form_refuses_what_canonical_json_refuses():
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": "\ud800"}):
        errors = []
        for form in (hashing.canonical_json, hashing.canonical_json_fast):
            try:
                form(bad)
            except (ValueError, TypeError) as exc:
                errors.append(type(exc))
        assert len(errors) == 2 and errors[0] == errors[1], bad


text = st.text()
fields = st.fixed_dictionaries(
    {
        "seq": st.integers(min_value=1) | st.booleans() | st.text(max_size=3),
        "ts": text,
        "actor_type": text,
        "actor_id": text | st.integers() | st.none(),
        "action": text,
        "object_type": text,
        "object_id": text,
        "payload_sha256": text,
        "tenant_id": st.none() | st.integers() | st.booleans() | st.text(max_size=2),
        "request_id": text,
        "client_ip": text,
        "version": st.just(1) | st.just(True) | st.just(1.0),
    }
)


@settings(max_examples=400, deadline=None)
@given(fields)
def test_the_fast_record_body_is_canonical_json_of_the_record_body(entry):
    try:
        expected = hashing.canonical_json(hashing.record_body(entry))
    except ValueError as exc:
        try:
            hashing.record_bytes(entry)
        except ValueError as again:
            assert type(again) is type(exc)
            return
        raise AssertionError("the fast form hashed what canonical JSON refuses") from exc
    assert hashing.record_bytes(entry) == expected


def test_the_bulk_frontier_is_leaf_by_leaf_at_every_size():
    rng = random.Random(16)
    for _ in range(200):
        start, n = rng.randint(0, 70), rng.randint(0, 140)
        leaves = [rng.randbytes(32) for _ in range(start + n)]
        one_by_one = merkle.Frontier()
        for leaf in leaves:
            one_by_one.append(leaf)
        bulk = merkle.Frontier()
        bulk.extend(leaves[:start])
        cuts = sorted(rng.sample(range(n + 1), min(3, n + 1)))
        done = 0
        for cut in [*cuts, n]:
            bulk.extend(leaves[start + done : start + cut])
            done = cut
        assert (bulk.size, bulk.nodes) == (one_by_one.size, one_by_one.nodes)
        assert bulk.root() == merkle.root(leaves)


def _chain(n):
    entries, prev = [], hashing.GENESIS_HASH
    for i in range(1, n + 1):
        payload = {"i": i, "ad": "Şükrü ığdır", "nested": {"b": [1, 2.5, None], "a": True}}
        e = {"id": i, "seq": i, "ts": f"2026-11-22T21:30:00.{i:06d}Z", "actor_type": "user", "actor_id": "7",
             "action": "job.status.changed", "object_type": "jobs.job", "object_id": str(i), "payload": payload,
             "payload_sha256": hashing.sha256_hex(hashing.canonical_json(payload)), "tenant_id": i % 3 or None,
             "request_id": "", "client_ip": "10.0.0.1", "version": 1}  # fmt: skip
        e["record_sha256"] = hashing.sha256_hex(hashing.canonical_json(hashing.record_body(e)))
        e["prev_hash"], e["chain_hash"] = prev, hashing.chain_hash(prev, e["record_sha256"])
        prev = e["chain_hash"]
        entries.append(e)
    return entries


def _one_by_one(entries):
    """The walk as it was before chunks: entry by entry, the frontier leaf by leaf (the reference)."""
    frontier, prev = merkle.Frontier(), hashing.GENESIS_HASH
    for expected, entry in enumerate(entries, start=1):
        problem = verification._entry_problem(entry, expected, prev)
        if problem:
            return entry["seq"], problem, expected - 1
        prev = entry["chain_hash"]
        frontier.append(bytes.fromhex(entry["record_sha256"]))
    return None, frontier.root().hex()


def test_a_chunked_walk_finds_the_first_problem_where_an_entry_by_entry_walk_does(monkeypatch):
    monkeypatch.setattr(verification, "CHUNK", 16)
    rng = random.Random(3)
    for _ in range(60):
        entries = json.loads(json.dumps(_chain(rng.randint(1, 70))))
        how = rng.choice(["payload", "field", "link", "chain", "seq", "none", "two"])
        for _times in range(2 if how == "two" else 1):
            e = rng.choice(entries)
            kind = rng.choice(["payload", "field", "link", "chain", "seq"]) if how == "two" else how
            if kind == "payload":
                e["payload"]["i"] = -1
            elif kind == "field":
                e["action"] = "job.deleted"
            elif kind == "link":
                e["prev_hash"] = "f" * 64
            elif kind == "chain":
                e["chain_hash"] = "e" * 64
            elif kind == "seq":
                e["seq"] += 5
        expected = _one_by_one(entries)
        report = verification.verify_entries(iter(entries))
        if expected[0] is None:
            assert report.ok and report.checked == len(entries)
        else:
            seq, problem, position = expected
            assert (report.finding.seq, report.finding.problem, report.finding.position) == (seq, problem, position)


def test_checkpoints_inside_a_chunk_are_checked_with_their_own_root(monkeypatch):
    monkeypatch.setattr(verification, "CHUNK", 16)
    entries = _chain(50)
    roots = {}
    frontier = merkle.Frontier()
    for e in entries:
        frontier.append(bytes.fromhex(e["record_sha256"]))
        roots[e["seq"]] = frontier.root().hex()
    checkpoints = [{"tree_size": s, "head_hash": entries[s - 1]["chain_hash"], "merkle_root": roots[s]}
                   for s in (1, 7, 16, 17, 33, 50)]  # fmt: skip
    report = verification.verify_entries(iter(entries), checkpoints=checkpoints)
    assert report.ok and report.checkpoints_checked == 6
    checkpoints[3] = {**checkpoints[3], "merkle_root": roots[18]}
    report = verification.verify_entries(iter(entries), checkpoints=checkpoints)
    assert report.finding.problem == "checkpoint at 17: the Merkle root differs"
