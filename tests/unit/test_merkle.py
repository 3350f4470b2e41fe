"""The merkle tree of active transfers: every leaf proves, nothing else does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connext.protocol.merkle import hash_pair, merkle_proof, merkle_root, verify_proof

from .strategies import bytes32


def test_empty_tree_is_zero_and_single_leaf_is_itself() -> None:
    assert merkle_root([]) == bytes(32)
    leaf = b"\x05" * 32
    assert merkle_root([leaf]) == leaf
    assert merkle_proof([leaf], leaf) == []
    assert verify_proof(leaf, leaf, [])


def test_three_leaves_carry_the_odd_one_up() -> None:
    a, b, c = sorted([b"\x01" * 32, b"\x02" * 32, b"\x03" * 32])
    assert merkle_root([c, a, b]) == hash_pair(hash_pair(a, b), c)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(bytes32, min_size=1, max_size=40, unique=True), data=st.data())
def test_every_leaf_proves_and_order_does_not_matter(
    leaves: list[bytes], data: st.DataObject
) -> None:
    root = merkle_root(leaves)
    assert merkle_root(reversed(leaves)) == root
    for leaf in leaves:
        assert verify_proof(root, leaf, merkle_proof(leaves, leaf))
    outsider = data.draw(bytes32.filter(lambda x: x not in leaves))
    proof = merkle_proof(leaves, leaves[0])
    assert not verify_proof(root, outsider, proof)
    if len(leaves) > 1:
        assert merkle_root(leaves[1:]) != root
