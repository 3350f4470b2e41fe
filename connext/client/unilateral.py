"""Leaving a channel without the node: what makes the funds self-custodied.

`force_close` puts the latest double-signed state on chain (deploying the channel's proxy
first if nobody did). During the channel's consensus window (its `timeout`) the node may
answer with a later state; after it, `exit_channel` pays out: it defunds the channel's
balances, proves each active transfer in the disputed state and settles it (resolving the
ones paid to us that we can open, refunding the others once their own dispute window is
over) and sends what the channel owes us to the recipient. `exit_channel` does what can be
done now and says what still waits, so it is called again until `done`.

Every transaction is sent from the user's own account, which pays the gas.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from web3 import Web3
from web3.exceptions import ContractLogicError

from ..chain.channel import ChannelContract, dispute_hash
from ..chain.contracts import Sender, contract
from ..protocol import errors
from ..protocol.channel import leaf
from ..protocol.encoding import keccak
from ..protocol.merkle import merkle_proof
from ..protocol.types import Address, ChannelState, Transfer
from ..store import StoredChannel

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispute:
    """The channel's dispute on chain."""

    nonce: int
    """Nonce of the disputed state."""
    consensus_expiry: int
    """Block time from which `exit_channel` can pay out."""
    transaction: str | None
    """Our dispute transaction; None when the chain held this state (or a later one)."""


@dataclass(frozen=True)
class ExitProgress:
    """What one `exit_channel` call did and what still waits."""

    paid_out: dict[Address, int] = field(default_factory=dict)
    """Sent to the recipient by this call, per asset (base units)."""
    waiting: dict[bytes, int] = field(default_factory=dict)
    """Transfers (by id) still locked on chain, with the block time they can be settled."""

    @property
    def done(self) -> bool:
        return not self.waiting


async def force_close(client: Client) -> Dispute:
    """Dispute our latest double-signed state on chain. From then on the channel takes no
    more updates (a later state would not count)."""
    client.engine.disputed.add(client.channel_address)
    async with client.engine.lock(client.channel_address):  # no update of ours in flight
        stored = await _stored(client)
    return await asyncio.to_thread(_OnChain(client, stored).dispute)


def disputed_on_chain(client: Client) -> bool:
    """Whether the client's channel is disputed on chain (a blocking read)."""
    channel = ChannelContract(client.w3, client.channel_address, client.node_address,
                              client.address)
    return channel.is_deployed() and channel.channel_dispute().nonce > 0


async def exit_channel(client: Client, recipient: Address | None = None) -> ExitProgress:
    """After the consensus window: pay out what can be paid now to `recipient` (our own
    address by default). Raises NotDisputed before `force_close`, DisputeWindowOpen while
    the window is open, UnknownDisputedState if the chain holds a state we do not have."""
    stored = await _stored(client)
    to = Web3.to_checksum_address(recipient or client.address)
    openers = {t.transfer_id: client.resolver_we_hold(t) for t in stored.transfers.values()}
    return await asyncio.to_thread(_OnChain(client, stored).exit, to, openers)


async def _stored(client: Client) -> StoredChannel:
    stored = await client.engine.channel(client.channel_address)
    if stored is None:
        raise errors.ChannelNotSetUp("no channel yet: call setup()")
    return stored


class _OnChain:
    """The chain side of one channel, from the user's account (blocking web3 calls)."""

    def __init__(self, client: Client, stored: StoredChannel) -> None:
        self.w3 = client.w3
        self.user = client.address
        self.stored = stored
        self.state: ChannelState = stored.state
        self.sender = Sender(client.w3, client.signer.private_key)
        self.factory = contract(client.w3, "ChannelFactory", client.network.channel_factory)
        self.channel = ChannelContract(client.w3, client.channel_address, self.state.alice,
                                       self.state.bob)

    def dispute(self) -> Dispute:
        update = self.stored.latest_update
        if not update.double_signed:
            raise errors.InvalidSignature("our latest state is not double-signed")
        assert update.alice_signature is not None and update.bob_signature is not None
        if not self.channel.is_deployed():
            log.info("deploying channel %s to dispute it", self.channel.address)
            self.sender.transact(self.factory.functions.create_channel(self.state.alice,
                                                                       self.state.bob))
        current = self.channel.channel_dispute()
        if current.nonce >= self.state.nonce:
            return Dispute(current.nonce, current.consensus_expiry, None)
        receipt = self.sender.transact(self.channel.dispute_channel(
            self.state, update.alice_signature, update.bob_signature))
        record = self.channel.channel_dispute()
        return Dispute(record.nonce, record.consensus_expiry,
                       "0x" + bytes(receipt["transactionHash"]).hex())

    def exit(self, recipient: Address, openers: dict[bytes, bytes | None]) -> ExitProgress:
        record = self.channel.channel_dispute() if self.channel.is_deployed() else None
        if record is None or record.nonce == 0:
            raise errors.NotDisputed("the channel is not disputed on chain: force-close first")
        now = self._now()
        if now < record.consensus_expiry:
            raise errors.DisputeWindowOpen(
                f"the dispute window is open until block time {record.consensus_expiry} "
                f"({record.consensus_expiry - now} s from now)")
        if record.dispute_hash != dispute_hash(self.state):
            raise errors.UnknownDisputedState(
                f"the chain holds state {record.nonce}, we hold {self.state.nonce}")
        self._defund_balances()
        waiting = {}
        for transfer in self.stored.transfers.values():
            until = self._settle(transfer, openers.get(transfer.transfer_id), now)
            if until is not None:
                waiting[transfer.transfer_id] = until
        paid = {}
        for asset in self.state.asset_ids:
            amount = self.channel.exitable(asset, self.user)
            if amount > 0:
                self.sender.transact(self.channel.exit(asset, self.user, recipient))
                paid[asset] = amount
        return ExitProgress(paid, waiting)

    def _defund_balances(self) -> None:
        assets = [asset for asset, nonce in zip(self.state.asset_ids, self.state.defund_nonces,
                                                strict=True)
                  if self.channel.defund_nonce(asset) < nonce]
        if assets:
            self.sender.transact(self.channel.defund_channel(self.state, assets))

    def _settle(self, transfer: Transfer, resolver: bytes | None, now: int) -> int | None:
        """Prove and settle one transfer of the disputed state; the block time it can be
        refunded when it must wait, else None (settled, now or before)."""
        core = transfer.core(keccak(transfer.initial_state))
        record = self.channel.transfer_dispute(leaf(transfer))
        if record.defunded:
            return None
        if record.expiry == 0:
            proof = merkle_proof([leaf(t) for t in self.stored.transfers.values()],
                                 leaf(transfer))
            self.sender.transact(self.channel.dispute_transfer(core, proof, self.state))
            record = self.channel.transfer_dispute(leaf(transfer))
            now = self._now()
        if now < record.expiry:
            if resolver is None:
                return record.expiry  # only its responder can settle it before then
            try:
                self.sender.transact(self.channel.defund_transfer(
                    core, transfer.initial_state, resolver))
            except ContractLogicError as exc:  # e.g. its lock expired: refunded later
                log.info("cannot resolve %s on chain: %s", transfer.transfer_id.hex(), exc)
                return record.expiry
            return None
        self.sender.transact(self.channel.defund_transfer(core, transfer.initial_state, b""))
        return None

    def _now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])
