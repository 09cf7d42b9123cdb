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

    def extend(self, leaves: list[bytes]) -> None:
        """append() for each leaf in order, in bulk: perfect subtrees are hashed level by level in one go."""
        sha = hashlib.sha256
        level_0 = [sha(b"\x00" + leaf).digest() for leaf in leaves]
        i, n = 0, len(level_0)
        while i < n:
            size = self.size
            # The largest perfect subtree that starts at `size` (aligned to it) and fits in what is left.
            height = min((size & -size).bit_length() - 1 if size else 63, (n - i).bit_length() - 1)
            block = level_0[i : i + (1 << height)]
            while len(block) > 1:
                block = [sha(b"\x01" + a + b).digest() for a, b in zip(block[::2], block[1::2], strict=True)]
            node, above = block[0], size >> height
            while above & 1:
                node = node_hash(self.nodes.pop(), node)
                above >>= 1
            self.nodes.append(node)
            self.size += 1 << height
            i += 1 << height

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


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): the sibling hashes from leaf `index` up to the root."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError("leaf index outside the tree")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: list[bytes], expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def consistency_proof(first_size: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PROOF(m, D[n]): shows the tree of the first `first_size` leaves is a prefix of this one."""
    if not 0 < first_size <= len(leaves):
        raise ValueError("the first tree must be non-empty and not larger than the second")
    return _subproof(first_size, leaves, True)


def verify_consistency(first_size, second_size, first_root, second_root, proof) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first_size <= second_size:
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    if first_size & (first_size - 1) == 0:
        proof = [first_root, *proof]
    if not proof:
        return False
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
