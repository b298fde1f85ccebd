"""RFC 6962 Merkle trees (records/merkle.py): the Certificate Transparency test vectors, then properties over
random logs: every honest proof verifies and every tampered one is rejected."""

import hashlib
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainarena.records.merkle import (
    HASH_SIZE,
    CachedLeaves,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The test vectors every CT implementation checks (transparency-dev/merkle testonly/constants.go and
# proof/verify_test.go). Indices here are 0-based; those files count leaves from 1.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_HASHES = [leaf_hash(data) for data in CT_LEAVES]
CT_ROOTS = [  # by tree size, 0 to 8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, tree size, proof)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
EMPTY_ROOT = bytes.fromhex(CT_ROOTS[0])
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

# Distinct entries, so that distinct trees have distinct roots and a reordering changes the log. The size is
# drawn first: left to st.lists, most logs would hold a handful of entries and the ragged shapes go untried.
logs = st.integers(0, 70).flatmap(
    lambda size: st.lists(st.binary(max_size=12), min_size=size, max_size=size, unique=True)
).map(lambda entries: [leaf_hash(entry) for entry in entries])
FAST = settings(max_examples=25, deadline=None)


def _definition_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 §2.1 writes it, with list slices: the oracle for the module's index walk."""
    if len(hashes) <= 1:
        return hashes[0] if hashes else hashlib.sha256(b"").digest()
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_definition_root(hashes[:split]), _definition_root(hashes[split:]))


def _flip(proof: list[bytes], position: int, byte: int) -> list[bytes]:
    changed = bytearray(proof[position])
    changed[byte] ^= 0x10
    return [*proof[:position], bytes(changed), *proof[position + 1 :]]


def _tamperings(proof: list[bytes], byte: int) -> list[list[bytes]]:
    """The proof with one hash changed, one dropped from either end, one added at either end, two swapped."""
    shapes = [_flip(proof, position, byte) for position in range(len(proof))]
    shapes += [proof[:-1], proof[1:], [*proof, SOME_HASH], [SOME_HASH, *proof], [*proof, proof[-1]]] if proof else []
    shapes += [[proof[1], proof[0], *proof[2:]]] if len(proof) > 1 and proof[0] != proof[1] else []
    return shapes


# --- Known answers -----------------------------------------------------------------------------------


def test_leaves_and_nodes_are_hashed_with_distinct_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(CT_HASHES[0], CT_HASHES[1]) == hashlib.sha256(b"\x01" + CT_HASHES[0] + CT_HASHES[1]).digest()
    assert node_hash(CT_HASHES[0], CT_HASHES[1]) != leaf_hash(CT_HASHES[0] + CT_HASHES[1])
    assert len(leaf_hash(b"x")) == len(node_hash(SOME_HASH, SOME_HASH)) == HASH_SIZE


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_roots_match_the_ct_vectors(size: int) -> None:
    assert root_hash(CT_HASHES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_proofs_match_the_ct_vectors(index: int, size: int, proof: list[str]) -> None:
    assert [h.hex() for h in inclusion_proof(CT_HASHES[:size], index)] == proof
    verify_inclusion(CT_HASHES[index], index, size, [bytes.fromhex(h) for h in proof], bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old_size", "new_size", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_ct_vectors(old_size: int, new_size: int, proof: list[str]) -> None:
    assert [h.hex() for h in consistency_proof(CT_HASHES[:new_size], old_size)] == proof
    old_root, new_root = bytes.fromhex(CT_ROOTS[old_size]), bytes.fromhex(CT_ROOTS[new_size])
    verify_consistency(old_size, new_size, old_root, new_root, [bytes.fromhex(h) for h in proof])


@pytest.mark.parametrize(("old_size", "new_size", "proof"), [c for c in CT_CONSISTENCY if c[2]])
def test_tampered_ct_consistency_proofs_are_rejected(old_size: int, new_size: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    old_root, new_root = bytes.fromhex(CT_ROOTS[old_size]), bytes.fromhex(CT_ROOTS[new_size])
    for tampered in [*_tamperings(hashes, 0), [], [old_root, *hashes], [*hashes, new_root]]:
        with pytest.raises(ProofError):
            verify_consistency(old_size, new_size, old_root, new_root, tampered)
    for wrong in [(new_root, new_root), (old_root, old_root), (new_root, old_root), (EMPTY_ROOT, new_root)]:
        with pytest.raises(ProofError):
            verify_consistency(old_size, new_size, *wrong, hashes)


# --- The cases the RFC 9162 algorithms leave out --------------------------------------------------------


@pytest.mark.parametrize(
    ("old_size", "new_size", "old_root", "new_root", "proof"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
        (0, 1, EMPTY_ROOT, SOME_HASH, []),  # the empty tree is a prefix of every tree
        (0, 8, EMPTY_ROOT, bytes.fromhex(CT_ROOTS[8]), []),
        (1, 1, SOME_HASH, SOME_HASH, []),
    ],
)
def test_trivially_consistent_tree_heads_pass(old_size, new_size, old_root, new_root, proof) -> None:
    verify_consistency(old_size, new_size, old_root, new_root, proof)


@pytest.mark.parametrize(
    ("old_size", "new_size", "old_root", "new_root", "proof", "message"),
    [
        (0, 3, SOME_HASH, SOME_HASH, [], "a tree of 0 leaves has root e3b0c44298fc1c14..., the old tree head says abacaba0"),
        (0, 0, EMPTY_ROOT, SOME_HASH, [], "two tree heads of 0 leaves differ"),
        (4, 4, EMPTY_ROOT, SOME_HASH, [], "two tree heads of 4 leaves differ: old root e3b0c44298fc1c14..., new root abacaba0"),
        (0, 1, EMPTY_ROOT, SOME_HASH, [EMPTY_ROOT], "from 0 to 1 leaves has 1 hashes; it needs 0"),
        (1, 1, SOME_HASH, SOME_HASH, [SOME_HASH], "from 1 to 1 leaves has 1 hashes; it needs 0"),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], "from 1 to 2 leaves has 0 hashes; it needs 1"),
        (2, 1, SOME_HASH, SOME_HASH, [], "the old tree has 2 leaves, more than the new tree's 1: a log only grows"),
        (-1, 1, SOME_HASH, SOME_HASH, [], "a tree has 0 or more leaves, not -1"),
        (1, 3, SOME_HASH, SOME_HASH, [SOME_HASH, SOME_HASH[:31]], "proof hash 1 is 31 bytes; a SHA-256 hash is 32"),
    ],
)
def test_inconsistent_tree_heads_are_named(old_size, new_size, old_root, new_root, proof, message) -> None:
    with pytest.raises(ProofError, match=re.escape(message)):
        verify_consistency(old_size, new_size, old_root, new_root, proof)


# --- Arguments and messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(CT_HASHES, 8), "index 8 is outside a tree of 8 leaves"),
        (lambda: inclusion_proof(CT_HASHES, -1), "index -1 is outside a tree of 8 leaves"),
        (lambda: inclusion_proof([], 0), "index 0 is outside a tree of 0 leaves"),
        (lambda: verify_inclusion(CT_HASHES[0], 9, 9, [], SOME_HASH), "index 9 is outside a tree of 9 leaves"),
        (lambda: verify_inclusion(CT_HASHES[0], 0, 0, [], EMPTY_ROOT), "index 0 is outside a tree of 0 leaves"),
        (lambda: verify_inclusion(CT_HASHES[0], 0, -2, [], EMPTY_ROOT), "a tree has 0 or more leaves, not -2"),
        (lambda: consistency_proof(CT_HASHES, 9), "the old tree has 9 leaves, more than the new tree's 8"),
        (lambda: consistency_proof(CT_HASHES, -1), "a tree has 0 or more leaves, not -1"),
    ],
)
def test_arguments_outside_the_tree_are_named(call, message) -> None:
    with pytest.raises(ProofError, match=message):
        call()
    assert issubclass(ProofError, ValueError)


def test_an_inclusion_failure_names_the_leaf_the_size_and_both_roots() -> None:
    proof = inclusion_proof(CT_HASHES, 5)
    expected = "inclusion proof of leaf 5 in a tree of 8 leaves leads to root 5dc9da79a70659a9..., the tree head says abacaba000000000..."
    with pytest.raises(ProofError, match=f"^{re.escape(expected)}$"):
        verify_inclusion(CT_HASHES[5], 5, 8, proof, SOME_HASH)
    with pytest.raises(ProofError, match="leads to root (?!5dc9)"):
        verify_inclusion(CT_HASHES[4], 5, 8, proof, bytes.fromhex(CT_ROOTS[8]))


@pytest.mark.parametrize("index", range(8))
def test_a_truncated_or_extended_inclusion_proof_is_rejected_by_its_length(index: int) -> None:
    proof, root = inclusion_proof(CT_HASHES, index), bytes.fromhex(CT_ROOTS[8])
    for shape in [proof[:-1], proof[1:], [*proof, root], [root, *proof], []]:
        with pytest.raises(ProofError, match=f"leaf {index} in a tree of 8 leaves has {len(shape)} hashes; it needs 3"):
            verify_inclusion(CT_HASHES[index], index, 8, shape, root)


def test_a_truncated_or_extended_consistency_proof_is_rejected_by_its_length() -> None:
    proof = consistency_proof(CT_HASHES[:7], 3)  # 3 is not a power of two: its root is not in the proof
    old_root, new_root = bytes.fromhex(CT_ROOTS[3]), bytes.fromhex(CT_ROOTS[7])
    verify_consistency(3, 7, old_root, new_root, proof)
    for shape in [proof[:-1], proof[1:], [*proof, new_root], [old_root, *proof]]:
        with pytest.raises(ProofError, match=f"from 3 to 7 leaves has {len(shape)} hashes; it needs {len(proof)}"):
            verify_consistency(3, 7, old_root, new_root, shape)


def test_a_proof_hash_of_the_wrong_length_is_named() -> None:
    proof = inclusion_proof(CT_HASHES, 2)
    with pytest.raises(ProofError, match="proof hash 2 is 33 bytes; a SHA-256 hash is 32"):
        verify_inclusion(CT_HASHES[2], 2, 8, [*proof[:2], proof[2] + b"\x00"], bytes.fromhex(CT_ROOTS[8]))


def test_a_log_larger_than_the_recursion_limit_gets_roots_and_proofs() -> None:
    size = sys.getrecursionlimit() * 3
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = root_hash(hashes)
    for index in (0, size // 2, size - 1):
        verify_inclusion(hashes[index], index, size, inclusion_proof(hashes, index), root)
    old_size = size - 7
    verify_consistency(old_size, size, root_hash(hashes[:old_size]), root, consistency_proof(hashes, old_size))


# --- Properties over random logs ------------------------------------------------------------------------


@FAST
@given(logs)
def test_the_root_is_the_rfc_definition(hashes: list[bytes]) -> None:
    assert root_hash(hashes) == _definition_root(hashes)


@FAST
@given(logs.filter(bool), st.integers(0, HASH_SIZE - 1))
def test_every_leaf_proves_its_inclusion_and_no_tampered_proof_does(hashes: list[bytes], byte: int) -> None:
    size, root = len(hashes), root_hash(hashes)
    for index in range(size):
        proof = inclusion_proof(hashes, index)
        verify_inclusion(hashes[index], index, size, proof, root)
        for tampered in _tamperings(proof, byte):
            with pytest.raises(ProofError):
                verify_inclusion(hashes[index], index, size, tampered, root)
        for wrong_index in {index - 1, index + 1, index ^ 2, size - 1 - index} - {index}:
            with pytest.raises(ProofError):
                verify_inclusion(hashes[index], wrong_index, size, proof, root)
        for wrong_root in [EMPTY_ROOT, SOME_HASH, hashes[index]] if size > 1 else [EMPTY_ROOT, SOME_HASH]:
            with pytest.raises(ProofError):
                verify_inclusion(hashes[index], index, size, proof, wrong_root)


@FAST
@given(logs.filter(bool), st.data())
def test_a_proof_checked_against_the_tree_head_of_another_size_is_rejected(hashes: list[bytes], data) -> None:
    # A root commits to the leaves, not to a size: the size comes from the same signed tree head as the root.
    index = data.draw(st.integers(0, len(hashes) - 1))
    proof = inclusion_proof(hashes, index)
    for other_size in set(range(index + 1, len(hashes))) | {len(hashes) + 1, 2 * len(hashes)}:
        other_tree = hashes[:other_size] + [leaf_hash(b"appended after the head %d" % i) for i in range(other_size - len(hashes))]
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, other_size, proof, root_hash(other_tree))


@FAST
@given(logs, st.integers(0, HASH_SIZE - 1))
def test_every_prefix_proves_its_consistency_and_no_tampered_proof_does(hashes: list[bytes], byte: int) -> None:
    roots = [root_hash(hashes[:size]) for size in range(len(hashes) + 1)]
    new_size, new_root = len(hashes), roots[-1]
    for old_size in range(new_size + 1):
        proof = consistency_proof(hashes, old_size)
        verify_consistency(old_size, new_size, roots[old_size], new_root, proof)
        if not 0 < old_size < new_size:
            continue
        for tampered in [*_tamperings(proof, byte), []]:
            with pytest.raises(ProofError):
                verify_consistency(old_size, new_size, roots[old_size], new_root, tampered)
        for wrong_old in {old_size - 1, old_size + 1, old_size ^ 2} - {old_size}:
            with pytest.raises(ProofError):
                verify_consistency(wrong_old, new_size, roots[min(wrong_old, new_size)], new_root, proof)
        for wrong_new in range(old_size, new_size):
            with pytest.raises(ProofError):
                verify_consistency(old_size, wrong_new, roots[old_size], roots[wrong_new], proof)
        for old_root, claimed_new in [(new_root, new_root), (roots[old_size], roots[old_size]), (new_root, roots[old_size])]:
            with pytest.raises(ProofError):
                verify_consistency(old_size, new_size, old_root, claimed_new, proof)


@FAST
@given(logs.filter(lambda hashes: len(hashes) > 1), st.data())
def test_a_log_that_dropped_or_reordered_an_entry_cannot_prove_anything_about_it(hashes: list[bytes], data) -> None:
    old_size = data.draw(st.integers(1, len(hashes)), label="old tree head's size")
    changed = data.draw(st.integers(0, old_size - 1), label="entry the old tree head covers")
    other = data.draw(st.integers(0, len(hashes) - 1).filter(lambda i: i != changed), label="entry swapped with it")
    old_root, honest_root = root_hash(hashes[:old_size]), root_hash(hashes)
    swapped = list(hashes)
    swapped[changed], swapped[other] = hashes[other], hashes[changed]
    for rewritten in [hashes[:changed] + hashes[changed + 1 :], swapped]:
        with pytest.raises(ProofError):  # the new tree head cannot be shown to extend the old one
            proof = consistency_proof(rewritten, old_size)  # (a dropped entry may leave fewer than old_size)
            verify_consistency(old_size, len(rewritten), old_root, root_hash(rewritten), proof)
        for index in range(len(rewritten)):  # nor can any entry be shown in the honest tree
            with pytest.raises(ProofError):
                verify_inclusion(rewritten[index], index, len(hashes), inclusion_proof(rewritten, index), honest_root)


@given(st.lists(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), min_size=1, max_size=70))
@settings(max_examples=25, deadline=None)
def test_cached_leaves_give_the_same_proofs_and_remember_at_most_one_root_per_node(leaves: list[bytes]) -> None:
    cached = CachedLeaves(leaves)
    for index in range(len(leaves)):
        assert inclusion_proof(cached, index) == inclusion_proof(leaves, index)
    for old_size in range(len(leaves) + 1):
        assert consistency_proof(cached, old_size) == consistency_proof(leaves, old_size)
    assert root_hash(cached) == root_hash(leaves)
    assert len(cached.roots) <= len(leaves)  # a tree of n leaves has n - 1 interior nodes
