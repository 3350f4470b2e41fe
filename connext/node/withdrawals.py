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
from typing import Any

from ..chain.channel import WithdrawCommitment
from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.channel import create_update, resolve_update
from ..protocol.encoding import withdraw_commitment_digest
from ..protocol.serialization import parse_address
from ..protocol.transfers import WITHDRAW
from ..protocol.types import ChannelState, Transfer, TransferBalance
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
    def __init__(self, engine: ChannelEngine, chain: NodeChain, notify: Notify) -> None:
        self.engine = engine
        self.chain = chain
        self.notify = notify

    async def on_created(self, state: ChannelState, transfer: Transfer) -> None:
        """A user's Withdraw transfer to us was stored: countersign and submit, or cancel."""
        try:
            commitment = commitment_of(state, transfer)
        except errors.ProtocolError as exc:
            log.warning("cancelling withdraw %s: %s", transfer.transfer_id.hex(), exc)
            await self.engine.propose(
                transfer.channel_address,
                lambda s, _t: resolve_update(s, self.engine.address, transfer.transfer_id,
                                             WITHDRAW.cancel_resolver),
            )
            return
        if await self.chain.withdrawal_used(state, commitment.nonce):
            # cannot happen with nonces the channel assigns, unless the chain was tampered
            # with: never sign a second commitment for a used nonce
            log.error("withdraw %s: nonce %d is used on chain; cancelling",
                      transfer.transfer_id.hex(), commitment.nonce)
            await self.engine.propose(
                transfer.channel_address,
                lambda s, _t: resolve_update(s, self.engine.address, transfer.transfer_id,
                                             WITHDRAW.cancel_resolver),
            )
            return
        commitment_hash = WITHDRAW.decode_state(transfer.initial_state)[3]
        user_signature: bytes = WITHDRAW.decode_state(transfer.initial_state)[0]
        node_signature = self.engine.signer.sign(commitment_hash)
        committed = await self.engine.propose(
            transfer.channel_address,
            lambda s, _t: resolve_update(s, self.engine.address, transfer.transfer_id,
                                         WITHDRAW.encode_resolver(node_signature)),
        )
        new_state = committed.applied.state
        signature_alice, signature_bob = (
            (node_signature, user_signature) if new_state.alice == self.engine.address
            else (user_signature, node_signature)
        )
        body = {
            "transferId": "0x" + transfer.transfer_id.hex(),
            "recipient": commitment.recipient,
            "assetId": commitment.asset_id,
            "amount": str(commitment.amount),
        }
        try:
            receipt = await self.chain.withdraw(new_state, commitment, signature_alice,
                                                signature_bob)
        except Exception as exc:
            log.exception("withdraw %s failed on chain", transfer.transfer_id.hex())
            await self.notify(transfer.initiator, "withdrawal.failed",
                              {**body, "error": str(exc)})
            return
        await self.notify(transfer.initiator, "withdrawal.confirmed", {
            **body,
            "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "blockNumber": int(receipt["blockNumber"]),
        })


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

    async def on_resolved(self, state: ChannelState, transfer: Transfer) -> None:
        """The user countersigned our reclaim: pay it on chain."""
        if transfer.balance.amount[0] != 0 or transfer.resolver is None:
            return  # cancelled by the user: the funds stay in the channel
        # the resolved transfer carries its final balance: the amount comes from our meta
        original = replace(transfer, balance=TransferBalance(
            (int(transfer.meta["reclaim"]), 0), transfer.balance.to))
        commitment = commitment_of(state, original)
        node_signature: bytes = WITHDRAW.decode_state(transfer.initial_state)[0]
        (user_signature,) = WITHDRAW.decode_resolver(transfer.resolver)
        await self.chain.withdraw(state, commitment, node_signature, user_signature)
        self.on_reclaimed(transfer.asset_id, commitment.amount)
