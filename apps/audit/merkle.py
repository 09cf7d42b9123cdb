"""RFC 6962 Merkle tree hashes over record hashes. Standard library only (the offline verifier uses it).

Leaves are the 32 raw bytes of each entry's record_sha256, in seq order.
"""

import hashlib


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class Frontier:
    """The roots of the perfect subtrees on the tree's right edge: O(log n) state that extends leaf by leaf.

    Stored with each checkpoint, so the next checkpoint's root costs only its new leaves.
    """

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None):
        self.size = size
        self.nodes = list(nodes or [])  # one per 1-bit of size, largest subtree first

    def append(self, leaf: bytes) -> None:
        node = leaf_hash(leaf)
        size = self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root

    def to_json(self) -> dict:
        return {"size": self.size, "nodes": [n.hex() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: dict | None) -> "Frontier":
        if not data:
            return cls()
        return cls(data["size"], [bytes.fromhex(n) for n in data["nodes"]])


def root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) straight from the definition; for tests and proofs."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(root(leaves[:k]), root(leaves[k:]))
