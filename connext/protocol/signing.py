"""Signing and recovery of 32-byte digests with secp256k1 (coincurve).

Signatures are Ethereum's 65 bytes r || s || v with v in {27, 28} and a low s, the only
form the contracts accept. This module signs digests only: what a digest means (and its
EIP-712 domain) is decided in `encoding`. It never logs or exposes a private key.
"""

from __future__ import annotations

import os

from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT

from ..counters import COUNTS
from .encoding import checksum, keccak
from .errors import InvalidSignature
from .types import Address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_CONTEXT = GLOBAL_CONTEXT.ctx


class Signer:
    """A private key and its address; signs digests."""

    __slots__ = ("_key", "address", "public_key")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("a private key is 32 bytes")
        self._key = PrivateKey(private_key)
        self.public_key: bytes = self._key.public_key.format(compressed=False)
        self.address: Address = checksum(keccak(self.public_key[1:])[12:])

    @classmethod
    def random(cls) -> Signer:
        while True:
            candidate = os.urandom(32)
            if 0 < int.from_bytes(candidate, "big") < SECP256K1_N:
                return cls(candidate)

    @classmethod
    def from_hex(cls, private_key: str) -> Signer:
        return cls(bytes.fromhex(private_key.removeprefix("0x")))

    @property
    def private_key(self) -> bytes:
        return bytes(self._key.secret)

    def sign(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ValueError("can only sign a 32-byte digest")
        COUNTS.signatures_made += 1
        raw = self._key.sign_recoverable(digest, hasher=None)
        return raw[:64] + bytes((raw[64] + 27,))

    def __repr__(self) -> str:  # never show the key
        return f"Signer({self.address})"


def _checked(digest: bytes, signature: bytes) -> int:
    """The recovery id of a well-formed signature, or InvalidSignature."""
    if len(digest) != 32:
        raise InvalidSignature("digest must be 32 bytes")
    if len(signature) != 65:
        raise InvalidSignature("signature must be 65 bytes")
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignature("signature v must be 27 or 28")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_N) or not (0 < s <= _HALF_N):
        raise InvalidSignature("signature r or s out of range (high s is not accepted)")
    return v - 27


def recover_public_key(digest: bytes, signature: bytes) -> PublicKey:
    """The public key that made `signature` over `digest` (as `ecrecover` finds it), or
    InvalidSignature."""
    recovery_id = _checked(digest, signature)
    COUNTS.signatures_checked += 1
    try:
        return PublicKey.from_signature_and_message(
            signature[:64] + bytes((recovery_id,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception/ValueError on bad points
        raise InvalidSignature(f"signature does not recover: {exc}") from exc


def address_bytes_of(public: PublicKey) -> bytes:
    return keccak(public.format(compressed=False)[1:])[12:]


def recover_address_bytes(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that made `signature` over `digest`, or InvalidSignature."""
    return address_bytes_of(recover_public_key(digest, signature))


def verifies(public: PublicKey, digest: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public`'s over `digest` (r and s checked by libsecp256k1's
    verify, low s required; v only checked to be 27 or 28: whether it is the right one
    takes a recovery, `recover_public_key`). About half the cost of a recovery, for a
    signer whose key is known already (e.g. a stream's payer, voucher after voucher)."""
    _checked(digest, signature)
    COUNTS.signatures_checked += 1
    parsed = _ffi.new("secp256k1_ecdsa_signature *")
    if not _lib.secp256k1_ecdsa_signature_parse_compact(_CONTEXT, parsed, signature[:64]):
        return False
    return bool(_lib.secp256k1_ecdsa_verify(_CONTEXT, parsed, digest, public.public_key))


def recover(digest: bytes, signature: bytes) -> Address:
    return checksum(recover_address_bytes(digest, signature))


def verify(digest: bytes, signature: bytes | None, address: Address) -> bool:
    """True when `signature` is `address`'s signature over `digest`."""
    if signature is None:
        return False
    try:
        recovered = recover_address_bytes(digest, signature)
    except InvalidSignature:
        return False
    return recovered == bytes.fromhex(address[2:])
