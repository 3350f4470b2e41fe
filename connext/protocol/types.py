"""Protocol data: channel states, transfers and updates as frozen dataclasses.

Amounts are integers in base units, hashes and signatures are `bytes`, addresses are
checksummed strings (the parties' identifiers). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

Address = str
"""A checksummed Ethereum address, e.g. '0x5FbDB2315678afecb367f032d93F642f64180aa3'."""

ETH: Address = "0x0000000000000000000000000000000000000000"
ZERO_HASH = bytes(32)
MAX_ASSETS = 16
MAX_AMOUNT = 2**128 - 1
"""The channel contract packs per-asset totals into 128 bits: no amount may exceed this."""
MAX_NONCE = 2**128 - 1


@dataclass(frozen=True, slots=True)
class NetworkContext:
    """Where a channel lives: the chain and the contracts its address is derived from."""

    chain_id: int
    channel_factory: Address
    channel_mastercopy: Address
    transfer_registry: Address


@dataclass(frozen=True, slots=True)
class Balance:
    """A channel's balance in one asset."""

    alice: int
    bob: int

    @property
    def total(self) -> int:
        return self.alice + self.bob


@dataclass(frozen=True, slots=True)
class TransferBalance:
    """A transfer's balance: index 0 is the initiator (payer), index 1 the responder."""

    amount: tuple[int, int]
    to: tuple[Address, Address]

    @property
    def total(self) -> int:
        return self.amount[0] + self.amount[1]


@dataclass(frozen=True, slots=True)
class ChannelState:
    """What both parties sign (see docs/PROTOCOL.md); per-asset tuples share one index."""

    channel_address: Address
    alice: Address
    bob: Address
    network: NetworkContext
    asset_ids: tuple[Address, ...]
    balances: tuple[Balance, ...]
    processed_deposits_a: tuple[int, ...]
    processed_deposits_b: tuple[int, ...]
    defund_nonces: tuple[int, ...]
    timeout: int
    nonce: int
    merkle_root: bytes

    def asset_index(self, asset_id: Address) -> int | None:
        try:
            return self.asset_ids.index(asset_id)
        except ValueError:
            return None

    def balance_of(self, asset_id: Address) -> Balance:
        index = self.asset_index(asset_id)
        return Balance(0, 0) if index is None else self.balances[index]

    def party(self, address: Address) -> str:
        """'alice' or 'bob' for a participant, ValueError otherwise."""
        if address == self.alice:
            return "alice"
        if address == self.bob:
            return "bob"
        raise ValueError(f"{address} is not a participant of channel {self.channel_address}")

    def counterparty(self, address: Address) -> Address:
        return self.bob if self.party(address) == "alice" else self.alice


@dataclass(frozen=True, slots=True)
class CoreTransferState:
    """The part of a transfer that is committed to in the channel's merkle root."""

    channel_address: Address
    transfer_id: bytes
    transfer_definition: Address
    initiator: Address
    responder: Address
    asset_id: Address
    balance: TransferBalance
    transfer_timeout: int
    initial_state_hash: bytes


@dataclass(frozen=True)
class Transfer:
    """A conditional transfer as both parties store it: the core plus its encoded state."""

    channel_address: Address
    transfer_id: bytes
    transfer_definition: Address
    initiator: Address
    responder: Address
    asset_id: Address
    balance: TransferBalance
    transfer_timeout: int
    initial_state: bytes
    channel_nonce: int
    """Nonce of the channel state that created the transfer."""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)
    resolver: bytes | None = None
    """Set once resolved: the encoded resolver that settled it."""

    def core(self, initial_state_hash: bytes) -> CoreTransferState:
        return CoreTransferState(
            channel_address=self.channel_address,
            transfer_id=self.transfer_id,
            transfer_definition=self.transfer_definition,
            initiator=self.initiator,
            responder=self.responder,
            asset_id=self.asset_id,
            balance=self.balance,
            transfer_timeout=self.transfer_timeout,
            initial_state_hash=initial_state_hash,
        )


class UpdateType(StrEnum):
    SETUP = "setup"
    DEPOSIT = "deposit"
    CREATE = "create"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class SetupDetails:
    timeout: int
    network: NetworkContext


@dataclass(frozen=True, slots=True)
class DepositDetails:
    """On-chain deposit totals of both parties, as read from the channel contract."""

    asset_id: Address
    total_deposits_alice: int
    total_deposits_bob: int


@dataclass(frozen=True)
class CreateDetails:
    transfer_id: bytes
    transfer_definition: Address
    asset_id: Address
    balance: TransferBalance
    initial_state: bytes
    transfer_timeout: int
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ResolveDetails:
    transfer_id: bytes
    resolver: bytes
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)


UpdateDetails = SetupDetails | DepositDetails | CreateDetails | ResolveDetails


@dataclass(frozen=True)
class Update:
    """A proposed move from nonce n to n+1. Signatures are over the resulting state.

    The responder never trusts computed fields: it rebuilds the next state from its own
    latest state and `details`, then checks the initiator's signature on that state.
    """

    channel_address: Address
    initiator: Address
    responder: Address
    type: UpdateType
    nonce: int
    details: UpdateDetails
    alice_signature: bytes | None = None
    bob_signature: bytes | None = None

    def with_signature(self, party: str, signature: bytes) -> Update:
        if party == "alice":
            return replace(self, alice_signature=signature)
        if party == "bob":
            return replace(self, bob_signature=signature)
        raise ValueError(f"unknown party {party!r}")

    @property
    def double_signed(self) -> bool:
        return self.alice_signature is not None and self.bob_signature is not None
