"""Routing payments sender -> node -> recipient, and settling them back.

When a sender's transfer to the node carries routing meta, the node creates the mirrored
transfer in the recipient's channel (same condition, shorter expiry, fee deducted), after
making sure its side of that channel holds enough. When the recipient resolves, the node
resolves the sender's transfer with the same resolver; when the recipient cancels, or the
payment expires undelivered, the node cancels the sender's transfer (refund).
Everything it needs after a restart is in the store: the routing record and the transfers.
It never forwards before the sender's transfer is double-signed and stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.channel import create_update, resolve_update
from ..protocol.encoding import keccak
from ..protocol.transfers import DEFINITIONS, HASHLOCK, TransferDefinition
from ..protocol.types import Address, ChannelState, Transfer
from ..store import AlreadyExists, ChannelStore

log = logging.getLogger(__name__)

ROUTING_ID = "routingId"
RECIPIENT = "recipient"


def forward_transfer_id(routing_id: bytes) -> bytes:
    """The recipient-side transfer id: derived, so a retried forward is idempotent."""
    return keccak(b"connext-forward" + routing_id)


def routing_id_of(transfer: Transfer) -> bytes | None:
    value = transfer.meta.get(ROUTING_ID)
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


class RecipientOffline(Exception):
    """The recipient did not answer; the forward waits until it reconnects."""


class Router:
    def __init__(
        self,
        engine: ChannelEngine,
        store: ChannelStore,
        *,
        definition_names: dict[Address, str],
        fee_fixed: int,
        forward_expiry_margin: int,
        collateralize: Callable[[ChannelState, Address, int], Awaitable[ChannelState]],
        find_channel: Callable[[Address], Awaitable[ChannelState | None]],
        on_event: Callable[[str, dict[str, Any]], None] = lambda kind, data: None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.address = engine.address
        self.definition_names = definition_names
        self.fee_fixed = fee_fixed
        self.forward_expiry_margin = forward_expiry_margin
        self.collateralize = collateralize
        self.find_channel = find_channel
        self.on_event = on_event
        self._inflight: set[bytes] = set()

    def _definition(self, transfer: Transfer) -> TransferDefinition:
        return DEFINITIONS[self.definition_names[transfer.transfer_definition]]

    # --- forward -------------------------------------------------------------------------

    async def forward(self, incoming: Transfer) -> None:
        """Mirror the sender's transfer into the recipient's channel (idempotent)."""
        routing_id = routing_id_of(incoming)
        if routing_id is None or routing_id in self._inflight:
            return
        self._inflight.add(routing_id)
        try:
            await self._forward(incoming, routing_id)
        finally:
            self._inflight.discard(routing_id)

    async def _forward(self, incoming: Transfer, routing_id: bytes) -> None:
        recipient = incoming.meta.get(RECIPIENT)
        routing = await asyncio.to_thread(self.store.get_routing, routing_id)
        if routing is None:
            await asyncio.to_thread(
                self.store.create_routing,
                routing_id=routing_id,
                sender_channel=incoming.channel_address,
                sender_transfer_id=incoming.transfer_id,
                asset_id=incoming.asset_id,
                amount=incoming.balance.amount[0],
                recipient=recipient if isinstance(recipient, str) else None,
            )
        elif routing.status not in ("pending",):
            return
        try:
            if not isinstance(recipient, str) or recipient in (self.address,
                                                               incoming.initiator):
                raise errors.InvalidUpdate("the payment names no valid recipient")
            channel = await self.find_channel(recipient)
            if channel is None:
                raise errors.ChannelNotSetUp(f"{recipient} has no channel with this node")
            amount = incoming.balance.amount[0] - self.fee_fixed
            if amount <= 0:
                raise errors.InvalidAmount("the payment does not cover the node's fee")
            forward_id = forward_transfer_id(routing_id)
            if await asyncio.to_thread(self.store.get_transfer, forward_id,
                                       channel_address=channel.channel_address) is not None:
                # forwarded before a restart: never twice, even if it is resolved since
                await asyncio.to_thread(
                    self.store.update_routing_status, routing_id, "forwarded",
                    recipient_channel=channel.channel_address, recipient_transfer_id=forward_id,
                )
                return
            channel = await self.collateralize(channel, incoming.asset_id, amount)
            outgoing_state = self._forward_state(incoming)
            meta = {
                **{k: v for k, v in incoming.meta.items() if k != RECIPIENT},
                "sender": incoming.initiator,
            }
            # DuplicateTransfer: forwarded before a restart, the transfer is already there
            with contextlib.suppress(errors.DuplicateTransfer):
                await self.engine.propose(
                    channel.channel_address,
                    lambda state, _transfers: create_update(
                        state,
                        self.address,
                        transfer_id=forward_id,
                        transfer_definition=incoming.transfer_definition,
                        asset_id=incoming.asset_id,
                        amount=amount,
                        initial_state=outgoing_state,
                        transfer_timeout=incoming.transfer_timeout,
                        meta=meta,
                    ),
                )
        except _OFFLINE as exc:
            log.info("recipient of %s offline (%s); will deliver later", routing_id.hex(), exc)
            return
        except errors.ProtocolError as exc:
            log.info("cannot forward %s: %s", routing_id.hex(), exc)
            await asyncio.to_thread(self.store.update_routing_status, routing_id, "failed",
                                    error=exc.message)
            self.on_event("payment.failed", {"routingId": "0x" + routing_id.hex(),
                                             "reason": exc.code})
            await self.cancel_sender(incoming)
            return
        await asyncio.to_thread(
            self.store.update_routing_status, routing_id, "forwarded",
            recipient_channel=channel.channel_address, recipient_transfer_id=forward_id,
        )

    def _forward_state(self, incoming: Transfer) -> bytes:
        definition = self._definition(incoming)
        if definition is HASHLOCK:
            lock, expiry = HASHLOCK.decode_state(incoming.initial_state)
            if expiry != 0:
                expiry -= self.forward_expiry_margin
                if expiry <= int(time.time()):
                    raise errors.InvalidUpdate("the payment expires too soon to forward")
            return HASHLOCK.encode_state(lock, expiry)
        return incoming.initial_state

    # --- settle back -----------------------------------------------------------------------

    async def settle_sender(self, outgoing: Transfer) -> None:
        """The recipient resolved our forward: resolve the sender's transfer the same way."""
        routing_id = routing_id_of(outgoing)
        if routing_id is None or outgoing.resolver is None:
            return
        routing = await asyncio.to_thread(self.store.get_routing, routing_id)
        if routing is None or routing.status in ("resolved", "cancelled"):
            return
        incoming = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if incoming is None:
            return
        paid = outgoing.balance.amount[1] > 0
        resolver = outgoing.resolver if paid else self._definition(incoming).cancel_resolver
        try:
            await self.engine.propose(
                incoming.channel_address,
                lambda state, _t: resolve_update(state, self.address, incoming.transfer_id,
                                                 resolver),
            )
        except errors.UnknownTransfer:
            pass  # already settled before a restart
        except _OFFLINE:
            log.info("sender of %s offline; will settle later", routing_id.hex())
            return
        status = "resolved" if paid else "cancelled"
        await asyncio.to_thread(self.store.update_routing_status, routing_id, status)
        self.on_event(f"payment.{status}", {
            "routingId": "0x" + routing_id.hex(), "assetId": incoming.asset_id,
            "amount": str(outgoing.balance.amount[1]),
        })

    async def cancel_sender(self, incoming: Transfer) -> None:
        """Refund the sender: cancel its transfer to us (we are its responder)."""
        try:
            await self.engine.propose(
                incoming.channel_address,
                lambda state, _t: resolve_update(
                    state, self.address, incoming.transfer_id,
                    self._definition(incoming).cancel_resolver,
                ),
            )
        except errors.UnknownTransfer:
            return
        except _OFFLINE:
            log.info("sender offline; refund of %s waits", incoming.transfer_id.hex())
            return
        routing_id = routing_id_of(incoming)
        if routing_id is not None:
            await asyncio.to_thread(self.store.update_routing_status, routing_id, "cancelled")

    async def _incoming(self, channel_address: Address, transfer_id: bytes) -> Transfer | None:
        stored = await self.engine.channel(channel_address)
        return None if stored is None else stored.transfers.get(transfer_id)

    # --- sweeping ----------------------------------------------------------------------------

    async def recover(self, channels: list[Address]) -> int:
        """Find payments stored but never recorded for routing (the node stopped between
        storing the sender's transfer and recording it) and queue them; returns how many."""
        found = 0
        for channel in channels:
            records = await asyncio.to_thread(self.store.transfers, channel, active=True)
            for record in records:
                transfer = record.transfer
                routing_id = routing_id_of(transfer)
                if transfer.responder != self.address or routing_id is None:
                    continue
                if await asyncio.to_thread(self.store.get_routing, routing_id) is not None:
                    continue
                recipient = transfer.meta.get(RECIPIENT)
                with contextlib.suppress(AlreadyExists):
                    await asyncio.to_thread(
                        self.store.create_routing,
                        routing_id=routing_id,
                        sender_channel=transfer.channel_address,
                        sender_transfer_id=transfer.transfer_id,
                        asset_id=transfer.asset_id,
                        amount=transfer.balance.amount[0],
                        recipient=recipient if isinstance(recipient, str) else None,
                    )
                    found += 1
        return found

    async def sweep(self, only_channel: Address | None = None) -> None:
        """Retry what is owed: undelivered forwards, unsettled senders, expired payments."""
        now = int(time.time())
        for routing in await asyncio.to_thread(self.store.routings_with_status,
                                               ("pending", "forwarded")):
            if only_channel is not None and only_channel not in (
                routing.sender_channel, routing.recipient_channel
            ):
                continue
            incoming = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
            if incoming is None:
                continue
            if routing.status == "forwarded" and routing.recipient_transfer_id is not None:
                outgoing = await asyncio.to_thread(
                    self.store.get_transfer, routing.recipient_transfer_id,
                    channel_address=routing.recipient_channel,
                )
                if outgoing is not None and outgoing.resolver is not None:
                    await self.settle_sender(outgoing)
                    continue
            if self._expired(incoming, now):
                await self.cancel_sender(incoming)
                self.on_event("payment.expired", {"routingId": "0x" + routing.routing_id.hex()})
            elif routing.status == "pending":
                await self.forward(incoming)

    def _expired(self, transfer: Transfer, now: int) -> bool:
        if self._definition(transfer) is not HASHLOCK:
            return False
        _lock, expiry = HASHLOCK.decode_state(transfer.initial_state)
        return bool(expiry != 0 and expiry <= now)


def _offline_errors() -> tuple[type[BaseException], ...]:
    from ..messaging import MessagingTimeout, NoResponders

    return (MessagingTimeout, NoResponders, RecipientOffline, TimeoutError)


_OFFLINE = _offline_errors()
