"""RFC 6962 Merkle tree hashing for the transparency log: roots, inclusion and consistency proofs.

Pure: every function takes hashes and sizes and returns hashes or raises; the log's storage is elsewhere.
The tree is the one Certificate Transparency uses (RFC 6962 §2.1, unchanged in RFC 9162 §2.1), so any
CT tool can check our proofs and ours can check theirs:
- a leaf is hashed as SHA-256(0x00 || data) and an interior node as SHA-256(0x01 || left || right), so a
  leaf can never pass for a node (second-preimage protection);
- a tree of n > 1 leaves splits at the largest power of two smaller than n; there is no padding.

Proofs are built over the list of leaf hashes (O(n) per call; wrap the list in :class:`CachedLeaves`
to build many proofs over one tree for O(n) in all) and checked with the RFC 9162 algorithms, which need only the sizes, the proof and the two hashes.
Appending needs no leaf but the new one: the log keeps its *frontier*, the roots of the perfect subtrees
that a tree of n leaves splits into (one per set bit of n, largest first), which gives the root and the
next frontier in O(log n) hashes (``frontier_append``, ``frontier_root``).

What a verified proof shows: that the leaf is in the tree the root commits to (inclusion), or that the
old tree is a prefix of the new one (consistency). Not what it shows: that the root is the operator's,
nor the tree's size (a root commits to the leaves, not to a size: leaf 0's proof in a tree of 5 leaves
also passes as one in a tree of 6 with the same root). Both come from the signed tree head, which must
sign size and root together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof does not hold, or its arguments cannot describe a tree; the message says what differs."""


class CachedLeaves(Sequence[bytes]):
    """Leaf hashes that remember every subtree root computed over them: the proofs of all entries of a
    tree then cost O(n) hashes together, not O(n) each (an export proves hundreds of entries at once)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves = list(leaf_hashes)
        self.roots: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._leaves)

    def __getitem__(self, index):  # type: ignore[override] - a Sequence's int and slice access
        return self._leaves[index]


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || data) (RFC 6962 §2.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right) (RFC 6962 §2.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already hashed leaves (RFC 6962 §2.1); the empty tree's root is SHA-256 of nothing."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def frontier_of(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The frontier of a tree: the roots of its perfect subtrees, left to right, one per set bit of its
    size from the highest (RFC 6962's split makes each left subtree perfect). O(n): done once, for a log
    whose frontier was never stored."""
    frontier, low, size = [], 0, len(leaf_hashes)
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            frontier.append(_subtree_root(leaf_hashes, low, low + (1 << bit)))
            low += 1 << bit
    return frontier


def frontier_append(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The frontier after appending ``leaf`` to the tree of ``size`` leaves whose frontier is given.

    Like adding 1 in binary: each trailing set bit of ``size`` is a perfect subtree of the new leaf's
    width, which merges with it into one twice as wide (at most log2 n hashes).
    """
    if size < 0 or len(frontier) != size.bit_count():
        raise ProofError(f"a frontier of a tree of {size} leaves has {max(size, 0).bit_count()} hashes, "
                         f"not {len(frontier)}")
    merged, node = list(frontier), leaf
    while size & 1:
        node = node_hash(merged.pop(), node)
        size >>= 1
    merged.append(node)
    return merged


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree whose frontier is given: each perfect subtree is the left child of what follows it."""
    if not frontier:
        return root_hash([])
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1: the sibling subtree roots from the leaf at `index` up to the root.

    Walks down from the root, noting the subtree the leaf is not in at each split; the RFC lists them leaf first.
    """
    _check_index(index, len(leaf_hashes))
    siblings = []
    low, high = 0, len(leaf_hashes)
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            siblings.append(_subtree_root(leaf_hashes, middle, high))
            high = middle
        else:
            siblings.append(_subtree_root(leaf_hashes, low, middle))
            low = middle
    return siblings[::-1]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2: what shows that the first `old_size` leaves are a prefix of the tree.

    Empty when old_size is 0 (the empty tree is a prefix of every tree) or equals the tree's size. Walks
    SUBPROOF(m, D[n], b) down from the root; `whole` is the RFC's b: true while the old tree is the
    left edge of the subtree, so the verifier already holds its root and it is left out.
    """
    size = len(leaf_hashes)
    _check_sizes(old_size, size)
    if old_size in (0, size):
        return []
    proof = []
    low, high, whole = 0, size, True
    while old_size != high:
        middle = low + _split(high - low)
        if old_size <= middle:
            proof.append(_subtree_root(leaf_hashes, middle, high))
            high = middle
        else:
            proof.append(_subtree_root(leaf_hashes, low, middle))
            low, whole = middle, False
    if not whole:
        proof.append(_subtree_root(leaf_hashes, low, high))
    return proof[::-1]


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `tree_size` leaves whose root is `root`.

    RFC 9162 §2.1.3.2, with the proof's length checked first (the RFC finds a wrong length at steps 4a and 5).
    """
    _check_index(index, tree_size)
    _check_hashes(proof)
    needed = _inclusion_length(index, tree_size)
    if len(proof) != needed:
        raise ProofError(
            f"inclusion proof of leaf {index} in a tree of {tree_size} leaves has {len(proof)} hashes; it needs {needed}"
        )
    computed = _climb(leaf_hash, index, tree_size - 1, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof of leaf {index} in a tree of {tree_size} leaves leads to root {_short(computed)}, "
            f"the tree head says {_short(root)}"
        )


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of `old_size` leaves with `old_root` is a prefix of the one with `new_root`.

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. Equal sizes need equal roots and an empty proof;
    old_size 0 needs the empty tree's root and an empty proof (the empty tree is a prefix of any tree).
    """
    _check_sizes(old_size, new_size)
    _check_hashes(proof)
    if old_size == 0 or old_size == new_size:
        _check_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    # Step 4: strip the levels where the old tree's last leaf is a right child: its root is built there.
    shift = (old_size & -old_size).bit_length() - 1
    first, last = (old_size - 1) >> shift, (new_size - 1) >> shift
    seeded = old_size == 1 << shift  # step 2: a complete old tree is itself the first node of the path
    needed = _inclusion_length(first, last + 1) + (0 if seeded else 1)
    if len(proof) != needed:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} leaves has {len(proof)} hashes; it needs {needed}"
        )
    path = [old_root, *proof] if seeded else list(proof)
    computed_old = _climb(path[0], first, last, path[1:], right_only=True)
    computed_new = _climb(path[0], first, last, path[1:])
    for which, computed, claimed in (("old", computed_old, old_root), ("new", computed_new, new_root)):
        if computed != claimed:
            raise ProofError(
                f"consistency proof from {old_size} to {new_size} leaves leads to {which} root {_short(computed)}, "
                f"the {which} tree head says {_short(claimed)}"
            )


def _climb(start: bytes, index: int, last: int, path: Sequence[bytes], right_only: bool = False) -> bytes:
    """The loop of RFC 9162 §2.1.3.2 step 4 (and §2.1.4.2 step 6): hash `start` up the path to a root.

    `index` is the node's position and `last` the tree's last position at the current level. A right
    child's sibling is on its left; so is every remaining one once the node is on the tree's right edge
    (index == last). The RFC's inner shift in step 4b only keeps its `sn` counting down to the check in
    step 5, which the callers' length check replaces, so it is left out. With `right_only`, siblings to
    the right are skipped: that rebuilds the old root in a consistency check (the RFC's fr), since the old
    tree has nothing right of its last node.
    """
    hashed = start
    for sibling in path:
        if index & 1 or index == last:
            hashed = node_hash(sibling, hashed)
        elif not right_only:
            hashed = node_hash(hashed, sibling)
        index, last = index >> 1, last >> 1
    return hashed


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes an inclusion proof of leaf `index` in a tree of `size` leaves has.

    Below the level where the paths to `index` and to the last leaf part, every level has a sibling; above
    it, only the levels where `index` is a right child do (the right edge of a ragged tree has none).
    """
    below = (index ^ (size - 1)).bit_length()
    return below + (index >> below).bit_count()


def _subtree_root(leaf_hashes: Sequence[bytes], low: int, high: int) -> bytes:
    """MTH of leaf_hashes[low:high] (high > low), without copying; recursion depth is log2 of the size.
    Remembered when the leaves are :class:`CachedLeaves`."""
    if high - low == 1:
        return leaf_hashes[low]
    roots = leaf_hashes.roots if isinstance(leaf_hashes, CachedLeaves) else None
    if roots is not None and (low, high) in roots:
        return roots[(low, high)]
    middle = low + _split(high - low)
    root = node_hash(_subtree_root(leaf_hashes, low, middle), _subtree_root(leaf_hashes, middle, high))
    if roots is not None:
        roots[(low, high)] = root
    return root


def _split(size: int) -> int:
    """k of RFC 6962 §2.1: the largest power of two smaller than size (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def _check_trivial_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """The cases RFC 9162 §2.1.4.2 leaves out: an empty old tree, or no new leaves."""
    if proof:
        raise ProofError(f"consistency proof from {old_size} to {new_size} leaves has {len(proof)} hashes; it needs 0")
    if old_size == 0 and old_root != root_hash([]):
        raise ProofError(f"a tree of 0 leaves has root {_short(root_hash([]))}, the old tree head says {_short(old_root)}")
    if old_size == new_size and old_root != new_root:
        raise ProofError(
            f"two tree heads of {old_size} leaves differ: old root {_short(old_root)}, new root {_short(new_root)}"
        )


def _check_index(index: int, size: int) -> None:
    if size < 0:
        raise ProofError(f"a tree has 0 or more leaves, not {size}")
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of {size} leaves")


def _check_sizes(old_size: int, new_size: int) -> None:
    if old_size < 0 or new_size < 0:
        raise ProofError(f"a tree has 0 or more leaves, not {min(old_size, new_size)}")
    if old_size > new_size:
        raise ProofError(f"the old tree has {old_size} leaves, more than the new tree's {new_size}: a log only grows")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")


def _short(value: bytes) -> str:
    return value.hex()[:16] + "..."
