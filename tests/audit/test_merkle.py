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
