import hashlib

import pytest

from apps.audit import merkle


def _leaves(n):
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100])
def test_the_frontier_root_equals_the_rfc6962_definition(n):
    frontier = merkle.Frontier()
    for leaf in _leaves(n):
        frontier.append(leaf)
    assert frontier.root() == merkle.root(_leaves(n))
    again = merkle.Frontier.from_json(frontier.to_json())
    assert again.root() == frontier.root() and again.size == n


def test_known_rfc6962_vectors():
    # Certificate Transparency's test vectors: empty tree and one-leaf tree of the empty leaf.
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_a_frontier_resumes_where_it_stopped():
    resumed = merkle.Frontier()
    for leaf in _leaves(10):
        resumed.append(leaf)
    resumed = merkle.Frontier.from_json(resumed.to_json())
    for leaf in _leaves(25)[10:]:
        resumed.append(leaf)
    assert resumed.root() == merkle.root(_leaves(25))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 32, 33])
def test_every_leaf_has_an_inclusion_proof_of_about_log2_n_hashes(n):
    leaves = _leaves(n)
    expected_root = merkle.root(leaves)
    for index, leaf in enumerate(leaves):
        proof = merkle.inclusion_proof(index, leaves)
        assert len(proof) <= max(1, (n - 1).bit_length())
        assert merkle.verify_inclusion(leaf, index, n, proof, expected_root)


def test_an_inclusion_proof_fails_for_a_changed_leaf_index_or_root():
    leaves = _leaves(11)
    proof = merkle.inclusion_proof(4, leaves)
    good_root = merkle.root(leaves)
    assert not merkle.verify_inclusion(b"changed", 4, 11, proof, good_root)
    assert not merkle.verify_inclusion(leaves[4], 5, 11, proof, good_root)
    assert not merkle.verify_inclusion(leaves[4], 4, 11, proof, merkle.root(leaves[:10]))
    assert not merkle.verify_inclusion(leaves[4], 4, 11, proof[:-1], good_root)


@pytest.mark.parametrize(("m", "n"), [(1, 1), (1, 2), (3, 7), (4, 8), (4, 13), (6, 8), (7, 33), (32, 33), (13, 13)])
def test_an_earlier_tree_is_proven_a_prefix_of_a_later_one(m, n):
    leaves = _leaves(n)
    proof = merkle.consistency_proof(m, leaves)
    assert merkle.verify_consistency(m, n, merkle.root(leaves[:m]), merkle.root(leaves), proof)


def test_a_consistency_proof_fails_when_history_was_rewritten():
    leaves = _leaves(10)
    rewritten = [*leaves[:3], b"forged", *leaves[4:]]
    proof = merkle.consistency_proof(6, rewritten)
    assert not merkle.verify_consistency(6, 10, merkle.root(leaves[:6]), merkle.root(rewritten), proof)
