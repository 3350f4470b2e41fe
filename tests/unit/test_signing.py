"""Signatures: only the canonical Ethereum form is accepted, forgeries never verify."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings

from connext.protocol.errors import InvalidSignature
from connext.protocol.signing import (
    SECP256K1_N,
    Signer,
    address_bytes_of,
    recover,
    recover_public_key,
    verifies,
    verify,
)

from .strategies import bytes32, private_keys


@settings(max_examples=50, deadline=None)
@given(key=private_keys, digest=bytes32)
def test_high_s_twin_of_a_valid_signature_is_refused(key: bytes, digest: bytes) -> None:
    signature = Signer(key).sign(digest)
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - signature[64],))
    with pytest.raises(InvalidSignature):
        recover(digest, twin)
    assert not verify(digest, twin, Signer(key).address)


def test_malformed_signatures_are_typed_errors() -> None:
    signer = Signer(b"\x07" * 32)
    digest = b"\x42" * 32
    good = signer.sign(digest)
    for bad in (b"", good[:64], good + b"\x00", good[:64] + b"\x00", good[:64] + b"\x1d",
                bytes(32) + good[32:], good[:32] + bytes(32) + good[64:]):
        with pytest.raises(InvalidSignature):
            recover(digest, bad)
        assert not verify(digest, bad, signer.address)


def test_signature_by_someone_else_does_not_verify() -> None:
    digest = b"\x42" * 32
    alice, mallory = Signer(b"\x01" * 32), Signer(b"\x02" * 32)
    assert verify(digest, alice.sign(digest), alice.address)
    assert not verify(digest, mallory.sign(digest), alice.address)
    assert not verify(b"\x43" * 32, alice.sign(digest), alice.address)
    assert not verify(digest, None, alice.address)


def test_signer_repr_hides_the_key() -> None:
    signer = Signer(b"\x09" * 32)
    assert "09" * 8 not in repr(signer)
    assert signer.address in repr(signer)


def test_a_known_key_verifies_exactly_what_a_recovery_would_accept() -> None:
    signer, other = Signer.random(), Signer.random()
    digest = os.urandom(32)
    good = signer.sign(digest)
    key = recover_public_key(digest, good)
    assert address_bytes_of(key) == bytes.fromhex(signer.address[2:])
    assert verifies(key, digest, good)
    assert not verifies(key, os.urandom(32), good)  # another digest
    assert not verifies(key, digest, other.sign(digest))  # another signer
    r, s = good[:32], int.from_bytes(good[32:64], "big")
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((good[64] ^ 1,))
    for bad in (b"", good[:64], good[:64] + b"\x00", good[:64] + b"\x1d", high_s,
                bytes(32) + good[32:]):
        with pytest.raises(InvalidSignature):
            verifies(key, digest, bad)
