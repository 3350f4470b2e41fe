"""Withdrawals the node countersigns and pays the gas for.

A user withdraws by creating a Withdraw transfer to the node whose initial state carries
the user's signature on the withdraw commitment. The node checks that the commitment is
exactly what the transfer says (recipient, asset, amount minus fee, this channel) and that
its nonce is the channel nonce of the update that created the transfer, unused on chain:
commitment nonces are assigned by the channel itself, so a user's withdrawal can never
take the nonce of the node's own reclaim (or the other way round). Then it resolves the
transfer with its own signature and submits the double-signed commitment on chain. A
commitment that does not match is refused (or cancelled: the funds return to the user).
The node never signs a commitment before checking it against the stored transfer.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..chain.channel import WithdrawCommitment
from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.channel import create_update, resolve_update
from ..protocol.encoding import withdraw_commitment_digest
from ..protocol.serialization import parse_address
from ..protocol.transfers import WITHDRAW
from ..protocol.types import ChannelState, Transfer, TransferBalance
from ..store import ChannelStore
from .onchain import NodeChain

log = logging.getLogger(__name__)

Notify = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""(user address, method, body): a notification to the user's client."""


def commitment_of(state: ChannelState, transfer: Transfer) -> WithdrawCommitment:
    """The commitment the transfer stands for; raises if its state does not commit to it."""
    _sig, initiator, responder, commitment_hash, nonce, fee = WITHDRAW.decode_state(
        transfer.initial_state
    )
    if initiator != transfer.initiator or responder != transfer.responder:
        raise errors.InvalidTransferState("the withdraw names other parties than the transfer")
    recipient_raw = transfer.meta.get("recipient")
    try:
        recipient = parse_address(recipient_raw, "meta.recipient")
    except errors.ProtocolError as exc:
        raise errors.InvalidTransferState("the withdraw names no valid recipient") from exc
    if nonce != transfer.channel_nonce:
        raise errors.InvalidTransferState(
            f"a withdraw commitment's nonce is its transfer's channel nonce "
            f"{transfer.channel_nonce}, not {nonce}")
    amount = transfer.balance.amount[0] - fee
    expected = withdraw_commitment_digest(
        state.network.chain_id, state.channel_address, recipient, transfer.asset_id, amount, nonce
    )
    if expected != commitment_hash:
        raise errors.InvalidTransferState("the commitment does not match the withdraw transfer")
    return WithdrawCommitment(recipient=recipient, asset_id=transfer.asset_id, amount=amount,
                              nonce=nonce)


class Withdrawals:
    """Users' withdrawals: countersign (or cancel) and pay them on chain; and, after a
    restart, pay every withdrawal or reclaim that was settled in a channel but whose
    commitment never made it on chain (the node stopped in between)."""

    def __init__(self, engine: ChannelEngine, chain: NodeChain, notify: Notify) -> None:
        self.engine = engine
        self.chain = chain
        self.notify = notify
        self._inflight: set[bytes] = set()

    async def on_created(self, state: ChannelState, transfer: Transfer) -> None:
        """A user's Withdraw transfer to us was stored: countersign and submit, or cancel.
        Also the recovery's duty for one left unanswered (idempotent)."""
        if transfer.transfer_id in self._inflight:
            return
        self._inflight.add(transfer.transfer_id)
        try:
            await self._answer(state, transfer)
        finally:
            self._inflight.discard(transfer.transfer_id)

    async def _answer(self, state: ChannelState, transfer: Transfer) -> None:
        try:
            commitment = commitment_of(state, transfer)
        except errors.ProtocolError as exc:
            log.warning("cancelling withdraw %s: %s", transfer.transfer_id.hex(), exc)
            await self._cancel(transfer)
            return
        if await self.chain.withdrawal_used(state, commitment.nonce):
            # cannot happen with nonces the channel assigns, unless the chain was tampered
            # with: never sign a second commitment for a used nonce
            log.error("withdraw %s: nonce %d is used on chain; cancelling",
                      transfer.transfer_id.hex(), commitment.nonce)
            await self._cancel(transfer)
            return
        commitment_hash = WITHDRAW.decode_state(transfer.initial_state)[3]
        node_signature = self.engine.signer.sign(commitment_hash)
        # paid by `on_settled` once the resolve is stored, whichever way it gets stored
        # (this proposal's reply, or a catch-up after a restart cut the reply off)
        with contextlib.suppress(errors.UnknownTransfer):  # resolved already
            await self.engine.propose(
                transfer.channel_address,
                lambda s, _t: resolve_update(s, self.engine.address, transfer.transfer_id,
                                             WITHDRAW.encode_resolver(node_signature)),
            )

    async def _cancel(self, transfer: Transfer) -> None:
        with contextlib.suppress(errors.UnknownTransfer):
            await self.engine.propose(
                transfer.channel_address,
                lambda s, _t: resolve_update(s, self.engine.address, transfer.transfer_id,
                                             WITHDRAW.cancel_resolver),
            )

    async def execute(self, state: ChannelState, transfer: Transfer,
                      commitment: WithdrawCommitment, resolver: bytes) -> None:
        """Pay a settled Withdraw's commitment on chain: the initiator's signature is in
        the transfer's state, the responder's in its resolver. The user is told how it
        went (a reclaim's user is told nothing)."""
        initiator_signature: bytes = WITHDRAW.decode_state(transfer.initial_state)[0]
        (responder_signature,) = WITHDRAW.decode_resolver(resolver)
        signatures = (initiator_signature, responder_signature)
        if transfer.initiator != state.alice:
            signatures = (responder_signature, initiator_signature)
        body = {
            "transferId": "0x" + transfer.transfer_id.hex(),
            "recipient": commitment.recipient,
            "assetId": commitment.asset_id,
            "amount": str(commitment.amount),
        }
        user = state.counterparty(self.engine.address)
        try:
            receipt = await self.chain.withdraw(state, commitment, *signatures)
        except Exception as exc:
            log.exception("withdraw %s failed on chain", transfer.transfer_id.hex())
            if transfer.initiator == user:
                await self.notify(user, "withdrawal.failed", {**body, "error": str(exc)})
            return
        if transfer.initiator == user:
            await self.notify(user, "withdrawal.confirmed", {
                **body,
                "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
                "blockNumber": int(receipt["blockNumber"]),
            })

    async def on_settled(self, state: ChannelState, transfer: Transfer) -> None:
        """A user's withdrawal we countersigned was stored resolved: pay it on chain."""
        record = await self.engine.store.run(self.engine.store.transfer_record,
                                             transfer.transfer_id)
        if record is not None and record.created_balance is not None:
            await self.pay_settled(state, transfer, record.created_balance)

    async def pay_settled(self, state: ChannelState, transfer: Transfer,
                          created: TransferBalance) -> bool:
        """Pay a settled withdrawal's (or reclaim's) commitment unless it is cancelled,
        being paid, paid, or recorded for the transaction manager to resume; returns
        whether it was sent. Safe to call for one withdrawal from several paths."""
        if (transfer.resolver is None or transfer.balance.amount[0] != 0
                or transfer.transfer_id in self._inflight):
            return False  # cancelled (the funds went back), or being handled
        self._inflight.add(transfer.transfer_id)
        try:
            original = replace(transfer, balance=created)
            commitment = commitment_of(state, original)
            if await self.chain.withdrawal_used(state, commitment.nonce):
                return False
            if await self.chain.withdrawal_in_flight(state, commitment):
                return False  # recorded before a restart: the transaction manager resumes it
            await self.execute(state, original, commitment, transfer.resolver)
            return True
        finally:
            self._inflight.discard(transfer.transfer_id)

    async def pay_unpaid(self, store: ChannelStore, definition: str, since: datetime) -> int:
        """Pay every withdrawal or reclaim settled since `since` whose commitment is not on
        chain yet (a restart cut it off); returns how many were sent."""
        sent = 0
        for record in await store.run(store.transfers_of, definition,
                                      self.engine.address, active=False,
                                      resolved_since=since):
            stored = await self.engine.channel(record.transfer.channel_address)
            if stored is None or record.created_balance is None:
                continue
            if await self.pay_settled(stored.state, record.transfer, record.created_balance):
                log.warning("withdraw %s was settled but never paid on chain: paid it now",
                            record.transfer.transfer_id.hex())
                sent += 1
        return sent


class Reclaims:
    """The node takes idle collateral back: a Withdraw transfer from the node to itself,
    countersigned by the user's client, then paid on chain by the node."""

    def __init__(self, engine: ChannelEngine, chain: NodeChain, withdraw_definition: str,
                 timeout: int = 3600,
                 on_reclaimed: Callable[[str, int], None] = lambda asset, amount: None,
                 ) -> None:
        self.engine = engine
        self.chain = chain
        self.definition = withdraw_definition
        self.timeout = timeout
        self.on_reclaimed = on_reclaimed
        self._inflight: set[tuple[str, str]] = set()

    async def reclaim(self, state: ChannelState, asset_id: str, amount: int) -> None:
        key = (state.channel_address, asset_id)
        if key in self._inflight or amount <= 0:
            return
        self._inflight.add(key)
        try:
            me = self.engine.signer
            # one id for every attempt: a retry after a lost reply must not reclaim twice
            transfer_id = os.urandom(32)

            def build(current: ChannelState, _t: Any) -> Any:
                nonce = current.nonce + 1
                commitment = withdraw_commitment_digest(
                    current.network.chain_id, current.channel_address, me.address, asset_id,
                    amount, nonce,
                )
                initial = WITHDRAW.encode_state(me.sign(commitment), me.address, current.bob,
                                                commitment, nonce, 0)
                return create_update(
                    current, me.address, transfer_id=transfer_id,
                    transfer_definition=self.definition, asset_id=asset_id, amount=amount,
                    initial_state=initial, transfer_timeout=self.timeout,
                    meta={"recipient": me.address, "reclaim": str(amount)},
                )

            with contextlib.suppress(errors.DuplicateTransfer):  # it landed before
                await self.engine.propose(state.channel_address, build)
        finally:
            self._inflight.discard(key)

    async def on_resolved(self, state: ChannelState, transfer: Transfer,
                          withdrawals: Withdrawals) -> None:
        """The user countersigned our reclaim: pay it on chain (unless the user cancelled
        it: the funds stay in the channel)."""
        # the resolved transfer carries its final balance: the amount comes from our meta
        amount = int(transfer.meta["reclaim"])
        if await withdrawals.pay_settled(state, transfer,
                                         TransferBalance((amount, 0), transfer.balance.to)):
            self.on_reclaimed(transfer.asset_id, amount)
