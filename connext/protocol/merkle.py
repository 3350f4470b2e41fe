"""Merkle tree over the hashes of a channel's active transfers.

Leaves are sorted, pairs are hashed in sorted order (keccak(min ++ max)) and an odd last
node is carried up unchanged, exactly as the channel contract verifies proofs. The root of
no leaves is 32 zero bytes, so a channel without transfers commits to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .encoding import keccak
from .types import ZERO_HASH


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def _layers(leaves: Iterable[bytes]) -> list[list[bytes]]:
    layer = sorted(leaves)
    layers = [layer]
    while len(layer) > 1:
        nxt = [hash_pair(layer[i], layer[i + 1]) for i in range(0, len(layer) - 1, 2)]
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer = nxt
        layers.append(layer)
    return layers


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    layers = _layers(leaves)
    return layers[-1][0] if layers[-1] else ZERO_HASH


def merkle_proof(leaves: Iterable[bytes], leaf: bytes) -> list[bytes]:
    """Siblings of `leaf` from the bottom up; ValueError if it is not a leaf."""
    layers = _layers(leaves)
    try:
        index = layers[0].index(leaf)
    except ValueError:
        raise ValueError("leaf is not in the tree") from None
    proof: list[bytes] = []
    for layer in layers[:-1]:
        sibling = index ^ 1
        if sibling < len(layer):
            proof.append(layer[sibling])
        index //= 2
    return proof


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
