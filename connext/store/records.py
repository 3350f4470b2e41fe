"""What the store hands back: frozen records built from rows, never rows themselves.

Protocol objects come back as the protocol's own dataclasses (`ChannelState`, `Update`,
`Transfer`); everything else (routing, chain transactions, events) has a record here.
Records are snapshots: changing the database never changes a record already returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..protocol.types import Address, ChannelState, Transfer, TransferBalance, Update


@dataclass(frozen=True)
class StoredChannel:
    """One channel as this party stores it."""

    state: ChannelState
    """The latest double-signed state."""
    latest_update: Update
    """The double-signed update that produced `state` (its nonce equals the state's)."""
    pending_update: Update | None
    """Our own proposal for the next nonce, persisted before we sent our signature."""
    transfers: Mapping[bytes, Transfer] = field(default_factory=dict)
    """The transfers active in `state`, by transfer id, oldest first."""


@dataclass(frozen=True)
class StoredTransfer:
    """A transfer with its lifecycle in the channel.

    `transfer` is the transfer as created; once resolved, as the protocol hands it back:
    `balance` is the final balance, `resolver` the resolver that settled it and `meta` the
    create meta updated by the resolve meta (which `resolve_meta` also keeps on its own).
    """

    transfer: Transfer
    created_nonce: int
    resolved_nonce: int | None
    """Nonce of the update that resolved it; None while active."""
    routing_id: bytes | None
    """From the create meta's `routingId`, if it had a well-formed one."""
    resolve_meta: Mapping[str, Any] | None
    created_at: datetime
    resolved_at: datetime | None
    created_balance: TransferBalance | None = None
    """The balance the transfer locked when it was created (`transfer.balance` is the
    final one once resolved)."""

    @property
    def active(self) -> bool:
        return self.resolved_nonce is None


class RoutingStatus(StrEnum):
    PENDING = "pending"
    """The sender's transfer to the node is stored; nothing forwarded yet."""
    FORWARDED = "forwarded"
    """The mirrored transfer to the recipient is double-signed."""
    RESOLVED = "resolved"
    """The recipient was paid and the sender's transfer settled."""
    CANCELLED = "cancelled"
    """The sender was refunded."""
    FAILED = "failed"
    """Forwarding failed for good (see `error`)."""
    LINK = "link"
    """A link payment nobody claimed yet: no recipient, never forwarded until a claim
    (`claim_routing` link -> pending) names one."""
    REFUNDING = "refunding"
    """A link its creator cancelled (or that expired): no claim can take it, the refund of
    the sender's transfer is under way (then cancelled)."""


@dataclass(frozen=True)
class Routing:
    """The two hops of one routed payment, linked by their routing id."""

    routing_id: bytes
    status: RoutingStatus
    sender_channel: Address
    sender_transfer_id: bytes
    asset_id: Address
    amount: int
    recipient: Address | None
    recipient_channel: Address | None
    recipient_transfer_id: bytes | None
    recipient_asset_id: Address | None
    recipient_amount: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewRouting:
    """A routing record written in the same transaction as a channel commit (the sender's
    transfer it describes); nothing is written when the routing id is known already."""

    routing_id: bytes
    sender_channel: Address
    sender_transfer_id: bytes
    asset_id: Address
    amount: int
    recipient: Address | None
    status: RoutingStatus = RoutingStatus.PENDING
    recipient_asset_id: Address | None = None
    """A swap's asset and amount out (from its quote); None for a payment in one asset."""
    recipient_amount: int | None = None


@dataclass(frozen=True)
class RoutingStep:
    """A routing's move to `status` written in the same transaction as a channel commit:
    only from one of `expected` (any status when None), else nothing is changed."""

    routing_id: bytes
    status: RoutingStatus
    expected: tuple[RoutingStatus, ...] | None = None
    recipient_channel: Address | None = None
    recipient_transfer_id: bytes | None = None


RoutingChange = NewRouting | RoutingStep


class TxStatus(StrEnum):
    PENDING = "pending"
    """Recorded (nonce reserved), not yet handed to the chain."""
    SUBMITTED = "submitted"
    """Sent at least once; see `sends`."""
    MINED = "mined"
    """In a block; `receipt_status` says whether it succeeded."""
    FAILED = "failed"
    """Given up on without being mined (see `error`)."""


@dataclass(frozen=True)
class TxSend:
    """One broadcast of a transaction: re-sends with bumped gas get a new hash."""

    tx_hash: bytes
    gas_price: int | None
    sent_at: datetime


@dataclass(frozen=True)
class StoredTransaction:
    """An on-chain transaction of an account this store manages."""

    id: int
    chain_id: int
    sender: Address
    nonce: int
    to: Address | None
    data: bytes
    value: int
    gas: int | None
    purpose: str
    channel_address: Address | None
    status: TxStatus
    sends: tuple[TxSend, ...]
    mined_hash: bytes | None
    block_number: int | None
    receipt_status: int | None
    gas_used: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Every hash it was sent under, oldest first."""
        return tuple(send.tx_hash for send in self.sends)


@dataclass(frozen=True)
class Event:
    """One entry of the activity log."""

    id: int
    channel_address: Address | None
    kind: str
    payload: Mapping[str, Any]
    created_at: datetime
