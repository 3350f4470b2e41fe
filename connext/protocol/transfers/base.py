"""The interface every transfer definition's Python mirror implements.

A definition maps (balance, initial state, resolver) to a final balance exactly as its
contract does: an input the contract reverts on raises a `TransferError` here. Mirrors are
pure; the block time and the contract's address come in through `TransferContext`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_abi.abi import encode

from ..encoding import checksum, keccak
from ..errors import InvalidTransferResolver, InvalidTransferState
from ..signing import recover_address_bytes
from ..types import Address, TransferBalance

MAX_SIGNATURE_BYTES = 65
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True, slots=True)
class TransferContext:
    """What a definition may read besides its inputs: chain, its own address, block time,
    and the secret registry (lock hash -> block time of the preimage's first registration,
    as the SecretRegistered logs show it; a lock missing here was never registered)."""

    chain_id: int
    definition: Address
    now: int
    registered: Mapping[bytes, int] = field(default_factory=dict)


def in_time(expiry: int, evidence_hash: bytes, ctx: TransferContext) -> bool:
    """Whether a condition with this expiry may still pay (contracts/expiry.vy): not
    expired, or its evidence (sha256 of the registered preimage) registered on chain no
    later than the expiry."""
    if expiry == 0 or expiry > ctx.now:
        return True
    registered = ctx.registered.get(evidence_hash, 0)
    return registered != 0 and registered <= expiry


def evidence_of(digest: bytes, signature: bytes) -> bytes:
    """What is registered to prove a signed receipt or voucher existed by its expiry."""
    return keccak(digest + signature)


def evidence_hash(evidence: bytes) -> bytes:
    """The secret registry's key of registered evidence (sha256, as for a preimage)."""
    return hashlib.sha256(evidence).digest()


class TransferDefinition(ABC):
    """Python mirror of one transfer definition contract."""

    name: ClassVar[str]
    contract_name: ClassVar[str]
    state_fields: ClassVar[tuple[tuple[str, str], ...]]
    """(abi type, field name) pairs of the encoded initial state."""
    resolver_fields: ClassVar[tuple[tuple[str, str], ...]]
    expiry_field: ClassVar[int | None] = None
    """Index of the state's `expiry` field, for a condition that expires (None: never)."""

    def expiry(self, encoded_state: bytes) -> int:
        """The condition's expiry (block time; 0: never)."""
        if self.expiry_field is None:
            return 0
        return int(self.decode_state(encoded_state)[self.expiry_field])

    def with_expiry(self, encoded_state: bytes, expiry: int) -> bytes:
        """The same condition expiring at `expiry` (a forward expires before its sender's)."""
        if self.expiry_field is None:
            return encoded_state
        values = list(self.decode_state(encoded_state))
        values[self.expiry_field] = expiry
        return self.encode_state(*values)

    def evidence(self, encoded_state: bytes, encoded_resolver: bytes,
                 ctx: TransferContext) -> bytes | None:
        """What to register in the secret registry so that `encoded_resolver` still pays
        after the expiry (None: nothing to register, e.g. a cancel)."""
        return None

    @property
    def state_encoding(self) -> str:
        return "tuple(" + ",".join(f"{t} {n}" for t, n in self.state_fields) + ")"

    @property
    def resolver_encoding(self) -> str:
        return "tuple(" + ",".join(f"{t} {n}" for t, n in self.resolver_fields) + ")"

    def encode_state(self, *values: Any) -> bytes:
        return encode([t for t, _ in self.state_fields], list(values))

    def encode_resolver(self, *values: Any) -> bytes:
        return encode([t for t, _ in self.resolver_fields], list(values))

    def decode_state(self, data: bytes) -> tuple[Any, ...]:
        try:
            values = _strict_decode(self.state_fields, data)
        except ValueError as exc:
            raise InvalidTransferState(f"{self.name}: state does not decode: {exc}") from exc
        return values

    def decode_resolver(self, data: bytes) -> tuple[Any, ...]:
        try:
            values = _strict_decode(self.resolver_fields, data)
        except ValueError as exc:
            raise InvalidTransferResolver(
                f"{self.name}: resolver does not decode: {exc}"
            ) from exc
        return values

    @property
    @abstractmethod
    def cancel_resolver(self) -> bytes:
        """An encoded resolver that cancels: the balance goes back to the initiator."""

    def create(self, balance: TransferBalance, encoded_state: bytes, ctx: TransferContext) -> None:
        """Raise InvalidTransferState unless `encoded_state` is a valid initial state."""
        if balance.amount[1] != 0:
            raise InvalidTransferState(f"{self.name}: the responder's initial amount must be 0")
        self._check_initial_state(balance, self.decode_state(encoded_state), ctx)

    def resolve(
        self,
        balance: TransferBalance,
        encoded_state: bytes,
        encoded_resolver: bytes,
        ctx: TransferContext,
    ) -> TransferBalance:
        """The final balance, or InvalidTransferResolver (the contract would revert)."""
        state = self.decode_state(encoded_state)
        resolver = self.decode_resolver(encoded_resolver)
        amount = self._resolve(balance, state, resolver, ctx)
        if max(amount) > MAX_UINT256:
            # the contract's checked arithmetic reverts here
            raise InvalidTransferResolver(f"{self.name}: the final amount overflows uint256")
        return TransferBalance(amount=amount, to=balance.to)

    @abstractmethod
    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None: ...

    @abstractmethod
    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]: ...


def signer_of(digest: bytes, signature: bytes) -> bytes | None:
    """Recovered 20-byte address, or None when the signature is not valid at all."""
    if len(signature) != MAX_SIGNATURE_BYTES:
        return None
    try:
        recovered = recover_address_bytes(digest, signature)
    except Exception:
        return None
    return None if recovered == bytes(20) else recovered


def _strict_decode(fields: tuple[tuple[str, str], ...], data: bytes) -> tuple[Any, ...]:
    """Decode an ABI tuple of address/bytes32/uint256/bytes exactly as Vyper 0.4's abi_decode.

    Hand-written for the four types our definitions use (eth-abi's generic decoder costs
    ~60 us a call on the update hot path) and to accept exactly what the contracts accept:
    a static tuple must be exactly its size; with a `bytes` (Vyper `Bytes[65]`) the input
    is between the head size and the ABI size bound; a `bytes` item must end inside the
    input (its padding is not checked) and be at most 65 long; addresses have zero padding.
    """
    head_size = 32 * len(fields)
    dynamic = sum(1 for t, _ in fields if t == "bytes")
    size_bound = head_size + dynamic * (32 + (MAX_SIGNATURE_BYTES + 31) // 32 * 32)
    if dynamic == 0 and len(data) != head_size:
        raise ValueError(f"expected exactly {head_size} bytes, got {len(data)}")
    if not head_size <= len(data) <= size_bound:
        raise ValueError(f"expected {head_size} to {size_bound} bytes, got {len(data)}")
    values: list[Any] = []
    for index, (abi_type, name) in enumerate(fields):
        word = data[32 * index : 32 * index + 32]
        if abi_type == "uint256":
            values.append(int.from_bytes(word, "big"))
        elif abi_type == "bytes32":
            values.append(word)
        elif abi_type == "address":
            if any(word[:12]):
                raise ValueError(f"{name}: address has non-zero padding")
            values.append(checksum(word[12:]))
        elif abi_type == "bytes":
            values.append(_decode_bytes(data, int.from_bytes(word, "big"), name))
        else:  # pragma: no cover - a definition declared a type we do not decode
            raise ValueError(f"unsupported ABI type {abi_type}")
    return tuple(values)


def _decode_bytes(data: bytes, offset: int, name: str) -> bytes:
    if offset + 32 > len(data):
        raise ValueError(f"{name}: offset out of bounds")
    length = int.from_bytes(data[offset : offset + 32], "big")
    if length > MAX_SIGNATURE_BYTES:
        raise ValueError(f"{name}: bytes longer than {MAX_SIGNATURE_BYTES}")
    start = offset + 32
    if start + length > len(data):
        raise ValueError(f"{name}: bytes run past the end of the input")
    return data[start : start + length]
