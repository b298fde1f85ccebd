"""The log's frontier (records/merkle.py): appending one leaf at a time to the frontier gives, at every
size, byte for byte the RFC 6962 root computed from scratch, and the frontier computed from scratch."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainarena.records.merkle import ProofError, frontier_append, frontier_of, frontier_root, leaf_hash, node_hash, root_hash


def _definition_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 §2.1 writes it, with list slices: the oracle."""
    if len(hashes) <= 1:
        return hashes[0] if hashes else hashlib.sha256(b"").digest()
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_definition_root(hashes[:split]), _definition_root(hashes[split:]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 300).flatmap(lambda size: st.lists(st.binary(max_size=8), min_size=size, max_size=size)))
def test_appending_to_the_frontier_gives_the_rfc_6962_root_at_every_size(entries: list[bytes]) -> None:
    leaves = [leaf_hash(entry) for entry in entries]
    frontier: list[bytes] = []
    assert frontier_root(frontier) == _definition_root([])
    for size, leaf in enumerate(leaves):
        frontier = frontier_append(frontier, size, leaf)
        assert len(frontier) == (size + 1).bit_count()
        assert frontier_root(frontier) == root_hash(leaves[: size + 1]) == _definition_root(leaves[: size + 1])
    assert frontier == frontier_of(leaves)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8, 1000, 1024, 1025])
def test_the_frontier_of_a_tree_is_the_roots_of_its_perfect_subtrees(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    widths = [1 << bit for bit in reversed(range(size.bit_length())) if size >> bit & 1]
    starts = [sum(widths[:i]) for i in range(len(widths))]
    assert frontier_of(leaves) == [root_hash(leaves[start:start + width]) for start, width in zip(starts, widths, strict=True)]
    assert frontier_root(frontier_of(leaves)) == root_hash(leaves)


def test_a_frontier_of_the_wrong_length_is_refused() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(3)]
    with pytest.raises(ProofError, match="a frontier of a tree of 3 leaves has 2 hashes, not 1"):
        frontier_append(frontier_of(leaves)[:1], 3, leaf_hash(b"x"))
