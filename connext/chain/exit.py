"""Disputing a channel on chain and taking one party's funds out after the window.

`ChannelExit.dispute` puts a party's latest double-signed state on chain (deploying the
channel's proxy first if nobody did). After the consensus window `ChannelExit.exit`
defunds the balances, proves each active transfer of the disputed state and settles it
(resolving those the party can open, refunding the others once their own dispute window
is over) and sends what the channel owes the party to a recipient. It does what can be
done now and says what still waits. Used by the client (`force_close`, `exit_channel`,
from the user's account) and by the node (its own share, through its transaction manager).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError

from ..protocol import errors
from ..protocol.channel import Rules, apply_update, leaf
from ..protocol.encoding import keccak
from ..protocol.merkle import merkle_proof
from ..protocol.types import Address, ChannelState, Transfer
from ..store import StoredChannel
from .channel import ChannelContract, dispute_hash
from .contracts import contract

log = logging.getLogger(__name__)

Send = Callable[[ContractFunction], Any]


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



class ChannelExit:
    """The chain side of one channel for one of its parties (`me`), sending through `send`
    (a blocking call that mines a contract call and returns its receipt)."""

    def __init__(self, w3: Web3, stored: StoredChannel, me: Address, send: Send) -> None:
        self.w3 = w3
        self.user = me
        self.stored = stored
        self.state: ChannelState = stored.state
        self.send = send
        self.factory = contract(w3, "ChannelFactory", self.state.network.channel_factory)
        self.channel = ChannelContract(w3, self.state.channel_address, self.state.alice,
                                       self.state.bob)

    def dispute(self) -> Dispute:
        update = self.stored.latest_update
        if not update.double_signed:
            raise errors.InvalidSignature("our latest state is not double-signed")
        assert update.alice_signature is not None and update.bob_signature is not None
        if not self.channel.is_deployed():
            log.info("deploying channel %s to dispute it", self.channel.address)
            self.send(self.factory.functions.create_channel(self.state.alice,
                                                                       self.state.bob))
        current = self.channel.channel_dispute()
        if current.nonce >= self.state.nonce:
            return Dispute(current.nonce, current.consensus_expiry, None)
        receipt = self.send(self.channel.dispute_channel(
            self.state, update.alice_signature, update.bob_signature))
        record = self.channel.channel_dispute()
        return Dispute(record.nonce, record.consensus_expiry,
                       "0x" + bytes(receipt["transactionHash"]).hex())

    def exit(self, recipient: Address, openers: dict[bytes, bytes | None],
             rules: Rules | None = None) -> ExitProgress:
        """Pay out what can be paid now. The disputed state is our latest, or (with `rules`)
        the state our unsettled proposal leads to: the other side may have countersigned it
        without telling us and disputed it."""
        record = self.channel.channel_dispute() if self.channel.is_deployed() else None
        if record is None or record.nonce == 0:
            raise errors.NotDisputed("the channel is not disputed on chain: force-close first")
        now = self._now()
        if now < record.consensus_expiry:
            raise errors.DisputeWindowOpen(
                f"the dispute window is open until block time {record.consensus_expiry} "
                f"({record.consensus_expiry - now} s from now)")
        found = [(state, transfers) for state, transfers in self._candidates(rules)
                 if dispute_hash(state) == record.dispute_hash]
        if not found:
            raise errors.UnknownDisputedState(
                f"the chain holds state {record.nonce}, we hold {self.state.nonce}")
        state, transfers = found[0]
        self._defund_balances(state)
        waiting = {}
        for transfer in transfers.values():
            until = self._settle(state, transfers, transfer,
                                 openers.get(transfer.transfer_id), now)
            if until is not None:
                waiting[transfer.transfer_id] = until
        paid = {}
        for asset in state.asset_ids:
            amount = self.channel.exitable(asset, self.user)
            if amount > 0:
                self.send(self.channel.exit(asset, self.user, recipient))
                paid[asset] = amount
        return ExitProgress(paid, waiting)

    def _candidates(self, rules: Rules | None) -> list[tuple[ChannelState,
                                                            Mapping[bytes, Transfer]]]:
        found: list[tuple[ChannelState, Mapping[bytes, Transfer]]] = [
            (self.state, self.stored.transfers)]
        pending = self.stored.pending_update
        if rules is not None and pending is not None and pending.nonce == self.state.nonce + 1:
            try:  # the state as it was signed: time-bound checks do not apply any more
                applied = apply_update(self.state, self.stored.transfers, pending,
                                       replace(rules, now=0))
            except errors.ProtocolError:
                return found
            found.append((applied.state, applied.transfers))
        return found

    def _defund_balances(self, state: ChannelState) -> None:
        def undone() -> list[str]:
            return [asset for asset, nonce in zip(state.asset_ids, state.defund_nonces,
                                                  strict=True)
                    if self.channel.defund_nonce(asset) < nonce]

        assets = undone()
        if not assets:
            return
        try:
            self.send(self.channel.defund_channel(state, assets))
        except ContractLogicError:
            if undone():  # not the counterparty's defund landing first: a real failure
                raise
            log.info("channel %s was defunded by the counterparty meanwhile",
                     self.channel.address)

    def _settle(self, state: ChannelState, transfers: Mapping[bytes, Transfer],
                transfer: Transfer, resolver: bytes | None, now: int) -> int | None:
        """Prove and settle one transfer of the disputed state; the block time it can be
        refunded when it must wait, else None (settled, now or before)."""
        core = transfer.core(keccak(transfer.initial_state))
        record = self.channel.transfer_dispute(leaf(transfer))
        if record.defunded:
            return None
        if record.expiry == 0:
            proof = merkle_proof([leaf(t) for t in transfers.values()], leaf(transfer))
            self.send(self.channel.dispute_transfer(core, proof, state))
            record = self.channel.transfer_dispute(leaf(transfer))
            now = self._now()
        if now < record.expiry:
            if resolver is None:
                return record.expiry  # only its responder can settle it before then
            try:
                self.send(self.channel.defund_transfer(
                    core, transfer.initial_state, resolver))
            except ContractLogicError as exc:  # e.g. its lock expired: refunded later
                log.info("cannot resolve %s on chain: %s", transfer.transfer_id.hex(), exc)
                return record.expiry
            return None
        try:
            self.send(self.channel.defund_transfer(core, transfer.initial_state, b""))
        except ContractLogicError:
            if not self.channel.transfer_dispute(leaf(transfer)).defunded:
                raise  # not settled by the counterparty meanwhile: a real failure
        return None

    def _now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])
