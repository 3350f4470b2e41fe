"""Routing payments sender -> node -> recipient, and settling them back.

When a sender's transfer to the node carries routing meta, the node creates the mirrored
transfer in the recipient's channel (same condition, shorter expiry, fee deducted), after
making sure its side of that channel holds enough. When the recipient resolves, the node
resolves the sender's transfer with the same resolver; when the recipient cancels, or the
payment expires undelivered, the node cancels the sender's transfer (refund).
Everything it needs after a restart is in the store: the routing record and the transfers.
It never forwards before the sender's transfer is double-signed and stored.

It never refunds a sender while the recipient may still take the forward: once the node
has signed the forward, the recipient holds half of a valid state it can complete alone,
whatever it answered. A forward that failed after it was signed stays pending (the sweep
re-sends the same signed update) until the recipient takes it, or until its lock expires
(the sender's transfer expires later, and the sweep refunds it then).

Locks are enforceable on chain (the secret registry): a forward expires `reveal_delta`
before the sender's lock. When the recipient revealed the preimage on chain in time (it was
not countersigned, or resolved the forward on chain), the node settles the sender with it.
When the node holds the preimage but the sender does not settle, the node registers it
before the sender's lock expires (within `reveal_margin`) and, if the sender stays silent
`dispute_unsettled_after` past the expiry, disputes the sender's channel and collects on
chain (connext/node/exits.py). One routing that fails never stops the sweep of the others.

A link payment names no recipient: its meta carries `link.signer`, the address of a key
derived from the secret. It is recorded with status "link" and waits; whoever holds the
secret claims it (`redeem_link`: a signature of that key over the claimant's address, and
a compare-and-set link -> pending naming the claimant), and from then on it is forwarded
and settled like any payment. Its creator may cancel it while nobody claimed it
(`cancel_link`: link -> refunding -> cancelled); an unclaimed link that expires is
refunded by the sweep. The node never sees the secret before the claimant reveals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.channel import Applied, create_update, resolve_update
from ..protocol.encoding import keccak
from ..protocol.identifiers import forward_transfer_id
from ..protocol.signing import recover_address_bytes
from ..protocol.swaps import SwapQuote
from ..protocol.transfers import DEFINITIONS, HASHLOCK, STREAM, TransferDefinition
from ..protocol.transfers.base import evidence_hash
from ..protocol.types import Address, ChannelState, CreateDetails, Transfer, Update, UpdateType
from ..store import (
    AlreadyExists,
    ChannelStore,
    NewRouting,
    Routing,
    RoutingChange,
    RoutingStatus,
    RoutingStep,
    StaleWrite,
)

log = logging.getLogger(__name__)

ROUTING_ID = "routingId"
RECIPIENT = "recipient"
LINK = "link"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

CLAIMED = (RoutingStatus.PENDING, RoutingStatus.FORWARDED, RoutingStatus.RESOLVED)
"""Statuses of a link somebody claimed (its routing names the claimant)."""


def link_claim_digest(routing_id: bytes, redeemer: Address) -> bytes:
    """What the link key signs to claim a link for `redeemer` (docs/PROTOCOL.md)."""
    return keccak(b"connext-link-claim" + routing_id + bytes.fromhex(redeemer[2:]))


def link_signer_of(transfer: Transfer) -> bytes | None:
    """The 20-byte link signer of a link payment (meta `link.signer`, no recipient), else
    None: a transfer that is not a link payment."""
    link = transfer.meta.get(LINK)
    if RECIPIENT in transfer.meta or not isinstance(link, dict):
        return None
    signer = link.get("signer")
    if not isinstance(signer, str) or not signer.startswith("0x") or len(signer) != 42:
        return None
    try:
        return bytes.fromhex(signer[2:])
    except ValueError:
        return None


def routing_id_of(transfer: Transfer) -> bytes | None:
    return routing_id_from_meta(transfer.meta)


def is_address(value: Any) -> bool:
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def routing_id_from_meta(meta: Mapping[str, Any]) -> bytes | None:
    value = meta.get(ROUTING_ID)
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


class RecipientOffline(Exception):
    """The recipient did not answer; the forward waits until it reconnects."""


@dataclass
class Enforcement:
    """How the node makes a sender's lock count on chain (see the module docstring)."""

    chain_id: int
    registered: Callable[[bytes], int]
    """Block time a lock's preimage (an evidence's sha256) was registered (0: not)."""
    preimage: Callable[[bytes], bytes | None]
    """The registered preimage of a lock, if any."""
    register: Callable[[bytes], Awaitable[None]]
    """Register a preimage (or other evidence) on chain (waits until mined)."""
    dispute: Callable[[Address], Awaitable[None]]
    """Dispute a channel on chain with the node's latest state (it takes no more updates)."""
    reveal_margin: int
    dispute_unsettled_after: int
    disputed: Callable[[Address], bool]
    """Whether a channel is disputed on chain (then only its on-chain exit settles it)."""


@dataclass(frozen=True)
class _Forward:
    """A checked, collateralized forward, ready to propose."""

    incoming: Transfer
    routing_id: bytes
    channel_address: Address
    amount: int
    initial_state: bytes
    asset_id: Address
    """The sender's asset, or a swap's asset out."""


class Router:
    def __init__(
        self,
        engine: ChannelEngine,
        store: ChannelStore,
        *,
        definition_names: dict[Address, str],
        fee_fixed: int,
        reveal_delta: int,
        collateralize: Callable[[ChannelState, Address, int], Awaitable[ChannelState]],
        find_channel: Callable[[Address], Awaitable[ChannelState | None]],
        on_event: Callable[[str, dict[str, Any]], None] = lambda kind, data: None,
        enforcement: Enforcement | None = None,
        on_failure: Callable[[str], None] = lambda task: None,
        swap_quote: Callable[[Transfer], SwapQuote | None] = lambda transfer: None,
        swap_terms: Callable[[Transfer], SwapQuote | None] = lambda transfer: None,
        swap_claim_window: int = 900,
        release_collateral: Callable[[Address, Address, int], None] = lambda c, a, n: None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.address = engine.address
        self.definition_names = definition_names
        self.fee_fixed = fee_fixed
        self.reveal_delta = reveal_delta
        self.collateralize = collateralize
        self.find_channel = find_channel
        self.on_event = on_event
        self.enforcement = enforcement
        self.on_failure = on_failure
        self.swap_quote = swap_quote
        """The checked swap quote a payment carries (None: one asset; raises if invalid)."""
        self.swap_terms = swap_terms
        """The same, None for anything invalid (what a routing record notes)."""
        self.swap_claim_window = swap_claim_window
        """A swap's forward expires at most this long after it is made."""
        self.release_collateral = release_collateral
        """Ends what `collateralize` reserved for a forward, once it is created or given up."""
        self._inflight: set[bytes] = set()
        self._sweeping: set[bytes] = set()
        """Routings a sweep is working on: another sweep (a user came online) skips them."""

    def _definition(self, transfer: Transfer) -> TransferDefinition:
        return DEFINITIONS[self.definition_names[transfer.transfer_definition]]

    def _link_signer(self, transfer: Transfer) -> bytes | None:
        """The link signer of a link payment (a Hashlock: the secret is its preimage). Any
        other transfer naming a link signer and no recipient cannot be routed and is
        refunded like a payment without a recipient."""
        signer = link_signer_of(transfer)
        return signer if signer is not None and self._definition(transfer) is HASHLOCK else None

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
        is_link = self._link_signer(incoming) is not None
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is None:
            routing = await self._record(incoming, routing_id, is_link=is_link)
        if (routing.sender_channel != incoming.channel_address
                or routing.sender_transfer_id != incoming.transfer_id):
            # another transfer under a routing id taken already (two creates raced past the
            # policy's check): never forwarded, never settled; its sender is refunded
            log.warning("transfer 0x%s reuses routing id 0x%s; refunding it",
                        incoming.transfer_id.hex(), routing_id.hex())
            await self.cancel_sender(incoming, record=False)
            return
        if routing.status is not RoutingStatus.PENDING:
            return  # a link waits for a claim; anything else is past forwarding
        recipient = routing.recipient if is_link else incoming.meta.get(RECIPIENT)
        try:
            forward = await self._prepare(incoming, routing_id, recipient)
            if forward is not None:
                await self._deliver(forward)
        except _OFFLINE as exc:
            log.info("recipient of %s offline (%s); will deliver later", routing_id.hex(), exc)
        except errors.ProtocolError as exc:
            await self._fail(incoming, routing_id, recipient, exc)

    def companion(self, update: Update, applied: Applied) -> list[RoutingChange]:
        """Stored with the node's commit of a sender's transfer to it: the payment's routing
        record (one transaction for both, so the forward starts from a durable record)."""
        transfer = applied.transfer
        if (update.type is not UpdateType.CREATE or transfer is None
                or transfer.responder != self.address
                or self.definition_names.get(transfer.transfer_definition) in (None, "Withdraw")):
            return []
        routing_id = routing_id_of(transfer)
        if routing_id is None:
            return []
        return [self._new_routing(transfer, routing_id,
                                  is_link=self._link_signer(transfer) is not None)]

    def _new_routing(self, incoming: Transfer, routing_id: bytes, *,
                     is_link: bool) -> NewRouting:
        recipient = incoming.meta.get(RECIPIENT)
        named = is_address(recipient)
        quote = self.swap_terms(incoming)
        return NewRouting(
            routing_id=routing_id,
            sender_channel=incoming.channel_address,
            sender_transfer_id=incoming.transfer_id,
            asset_id=incoming.asset_id,
            amount=incoming.balance.amount[0],
            recipient=recipient if named and not is_link else None,
            status=RoutingStatus.LINK if is_link else RoutingStatus.PENDING,
            recipient_asset_id=None if quote is None else quote.asset_out,
            recipient_amount=None if quote is None else quote.amount_out,
        )

    async def _record(self, incoming: Transfer, routing_id: bytes, *, is_link: bool) -> Routing:
        """The routing record of a sender's transfer to us (created when missing)."""
        with contextlib.suppress(AlreadyExists):
            return await self.store.run(self.store.record_routing,
                                        self._new_routing(incoming, routing_id, is_link=is_link))
        routing = await self.store.run(self.store.get_routing, routing_id)
        assert routing is not None
        return routing

    async def _prepare(self, incoming: Transfer, routing_id: bytes,
                       recipient: Any) -> _Forward | None:
        """Check the forward can be made and collateralize the recipient's channel; None
        when it was made before (a restart): the routing is then marked forwarded. Nothing
        is signed here, so a failure leaves no transfer behind. A payment with a swap quote
        forwards the quote's asset and amount out (to the payer itself: a swap in its own
        channel), and only while the quote is valid."""
        quote = self.swap_quote(incoming)
        if (not isinstance(recipient, str) or recipient == self.address
                or (recipient == incoming.initiator and quote is None)):
            raise errors.InvalidUpdate("the payment names no valid recipient")
        channel = await self.find_channel(recipient)
        if channel is None:
            raise errors.ChannelNotSetUp(f"{recipient} has no channel with this node")
        # a stream pays what its vouchers say on both hops: no fee can come out of it
        fee = 0 if self._definition(incoming) is STREAM else self.fee_fixed
        amount = incoming.balance.amount[0] - fee
        asset_id = incoming.asset_id
        if quote is not None:  # the quote's fee is the node's fee
            asset_id, amount = quote.asset_out, quote.amount_out
        if amount <= 0:
            raise errors.InvalidAmount("the payment does not cover the node's fee")
        forward_id = forward_transfer_id(routing_id)
        if await self.store.run(self.store.get_transfer, forward_id,
                                channel_address=channel.channel_address) is not None:
            # forwarded before a restart: never twice, even if it is resolved since
            await self._mark_forwarded(routing_id, channel.channel_address)
            return None
        if quote is not None and int(time.time()) >= quote.expiry:
            # the price held until the expiry: later, the payment is refunded
            raise errors.QuoteExpired("the quote expired before the payment could be forwarded")
        outgoing_state = self._forward_state(incoming)
        if quote is not None:
            outgoing_state = self._swap_claim_window(incoming, outgoing_state)
        channel = await self.collateralize(channel, asset_id, amount)
        return _Forward(incoming, routing_id, channel.channel_address, amount, outgoing_state,
                        asset_id)

    async def _deliver(self, forward: _Forward) -> None:
        """Create the mirrored transfer in the recipient's channel; mark it forwarded."""
        try:
            await self._create_forward(forward)
        finally:
            self.release_collateral(forward.channel_address, forward.asset_id,
                                    forward.amount)

    async def _create_forward(self, forward: _Forward) -> None:
        incoming = forward.incoming
        forward_id = forward_transfer_id(forward.routing_id)
        meta = {
            **{k: v for k, v in incoming.meta.items() if k != RECIPIENT},
            "sender": incoming.initiator,
        }
        # DuplicateTransfer: forwarded before a restart, the transfer is already there
        forwarded = RoutingStep(forward.routing_id, RoutingStatus.FORWARDED,
                                expected=(RoutingStatus.PENDING,),
                                recipient_channel=forward.channel_address,
                                recipient_transfer_id=forward_id)
        try:
            await self.engine.propose(
                forward.channel_address,
                lambda state, _transfers: create_update(
                    state,
                    self.address,
                    transfer_id=forward_id,
                    transfer_definition=incoming.transfer_definition,
                    asset_id=forward.asset_id,
                    amount=forward.amount,
                    initial_state=forward.initial_state,
                    transfer_timeout=incoming.transfer_timeout,
                    meta=meta,
                ),
                routings=[forwarded],  # marked forwarded with the commit of the forward
            )
        except errors.DuplicateTransfer:
            await self._mark_forwarded(forward.routing_id, forward.channel_address)

    async def _signed_forward_outstanding(self, recipient: Any, routing_id: bytes) -> bool:
        """Whether the recipient holds our signature on the forward of `routing_id`: it is
        in the channel, or it is our pending update there (signed, sent, its fate unknown).
        The node signs one update per nonce, so a pending update stays takeable until the
        channel moves past its nonce, which only that update itself can do."""
        if not isinstance(recipient, str):
            return False
        channel = await self.find_channel(recipient)
        stored = None if channel is None else await self.engine.channel(channel.channel_address)
        if stored is None:
            return False
        forward_id = forward_transfer_id(routing_id)
        if forward_id in stored.transfers:
            return True
        pending = stored.pending_update
        return (pending is not None and pending.nonce == stored.state.nonce + 1
                and isinstance(pending.details, CreateDetails)
                and pending.details.transfer_id == forward_id)

    async def _mark_forwarded(self, routing_id: bytes, channel_address: Address) -> None:
        # only from pending: a recipient that resolved at once may be settled already
        with contextlib.suppress(StaleWrite):
            await self.store.run(
                self.store.update_routing_status, routing_id, "forwarded",
                recipient_channel=channel_address,
                recipient_transfer_id=forward_transfer_id(routing_id),
                expected=RoutingStatus.PENDING,
            )

    async def _fail(self, incoming: Transfer, routing_id: bytes, recipient: Any,
                    exc: errors.ProtocolError) -> None:
        """Forwarding failed for good: record why and refund the sender. Unless the node
        signed the forward already (the recipient answered with an error, or the reply
        was bad): then the payment stays pending, the sweep re-sends the same update, and
        the sender is refunded only once it expires (after the forward did)."""
        if await self._signed_forward_outstanding(recipient, routing_id):
            log.warning("forward of %s is signed but not taken (%s); it stays pending",
                        routing_id.hex(), exc)
            return
        log.info("cannot forward %s: %s", routing_id.hex(), exc)
        await self.store.run(self.store.update_routing_status, routing_id, "failed",
                             error=exc.message)
        self.on_event("payment.failed", {"routingId": "0x" + routing_id.hex(),
                                         "reason": exc.code})
        await self.cancel_sender(incoming)

    def _forward_state(self, incoming: Transfer) -> bytes:
        """The forward's condition: the sender's, expiring `reveal_delta` earlier (a
        hashlock, an oracle payment, a stream). If the recipient reveals its evidence on
        chain (registers it) by the forward's expiry, the node has the reveal delta to
        settle the sender, or to register it itself before the sender's condition
        expires. A condition without expiry stays without."""
        definition = self._definition(incoming)
        expiry = definition.expiry(incoming.initial_state)
        if expiry == 0:
            return incoming.initial_state
        expiry -= self.reveal_delta
        if expiry <= int(time.time()):
            raise errors.InvalidUpdate("the payment expires too soon to forward")
        return definition.with_expiry(incoming.initial_state, expiry)

    def _swap_claim_window(self, incoming: Transfer, state: bytes) -> bytes:
        """A swap's forward expires within the claim window: the recipient claims it (or
        refuses it) soon, not whenever the price has moved its way during the payment's
        whole timeout. Shorter than the sender's lock, so the reveal delta only grows."""
        definition = self._definition(incoming)
        latest = int(time.time()) + self.swap_claim_window
        expiry = definition.expiry(state)
        if expiry != 0 and expiry <= latest:
            return state
        return definition.with_expiry(state, latest)

    # --- settle back -----------------------------------------------------------------------

    async def settle_sender(self, outgoing: Transfer) -> None:
        """The recipient resolved our forward: resolve the sender's transfer the same way."""
        routing_id = routing_id_of(outgoing)
        if routing_id is None or outgoing.resolver is None:
            return
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is None or routing.status in ("resolved", "cancelled"):
            return
        incoming = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if incoming is None:
            return
        paid = outgoing.balance.amount[1] > 0
        resolver = outgoing.resolver if paid else self._definition(incoming).cancel_resolver
        swapped = outgoing.asset_id != incoming.asset_id
        await self._settle(incoming, routing_id, resolver, paid=paid,
                           amount=(incoming.balance.amount[0] if swapped and paid
                                   else outgoing.balance.amount[1]),
                           recipient_channel=outgoing.channel_address,
                           recipient_transfer_id=outgoing.transfer_id,
                           swapped_out=((outgoing.asset_id, outgoing.balance.amount[1])
                                        if swapped and paid else None))

    async def _settle(self, incoming: Transfer, routing_id: bytes, resolver: bytes, *,
                      paid: bool, amount: int, recipient_channel: Address | None = None,
                      recipient_transfer_id: bytes | None = None,
                      swapped_out: tuple[Address, int] | None = None) -> bool:
        """Resolve the sender's transfer with `resolver`; False when the sender did not
        answer (the sweep retries, and enforces the lock on chain if it must)."""
        if self.enforcement is not None and self.enforcement.disputed(incoming.channel_address):
            return False  # settled on chain by the node's exit
        status = RoutingStatus.RESOLVED if paid else RoutingStatus.CANCELLED
        step = RoutingStep(routing_id, status, recipient_channel=recipient_channel,
                           recipient_transfer_id=recipient_transfer_id)
        try:
            await self.engine.propose(
                incoming.channel_address,
                lambda state, _t: resolve_update(state, self.address, incoming.transfer_id,
                                                 resolver),
                routings=[step],  # the routing's new status goes with the resolve
            )
        except errors.UnknownTransfer:  # settled already: by a concurrent settle, or before
            # a restart; the commit that settled it recorded the status (and its event went
            # out then) unless the routing says otherwise
            routing = await self.store.run(self.store.get_routing, routing_id)
            if routing is not None and routing.status is status:
                return True
            await self.store.run(self.store.update_routing_status, routing_id, status,
                                 recipient_channel=recipient_channel,
                                 recipient_transfer_id=recipient_transfer_id)
        except _OFFLINE:
            log.info("sender of %s offline; will settle later", routing_id.hex())
            return False
        except errors.InvalidTransferResolver as exc:
            if not paid or not self._expired(incoming, int(time.time())):
                raise
            # the sender's lock expired before it settled and before the preimage was
            # registered: the node cannot collect any more; the sender gets its money back
            log.error("payment %s: the sender's lock expired unsettled (%s); refunding it",
                      routing_id.hex(), exc.message)
            self.on_failure("uncollected")
            await self.cancel_sender(incoming)
            await self.store.run(self.store.update_routing_status, routing_id, "failed",
                                 error="the sender's lock expired before it settled")
            return True
        # a swap's fee is the quote's, in the asset out (kept in the quote, not counted here)
        fee = (0 if not paid or swapped_out is not None or self._definition(incoming) is STREAM
               else self.fee_fixed)
        self.on_event(f"payment.{status.value}", {
            "routingId": "0x" + routing_id.hex(), "assetId": incoming.asset_id,
            "amount": str(amount), "fee": str(fee),
            # a swap: what the recipient got, in the other asset (metrics count swaps by it)
            **({"recipientAssetId": swapped_out[0], "recipientAmount": str(swapped_out[1])}
               if swapped_out is not None else {}),
        })
        return True

    async def settle_with_resolver(self, forward: Transfer, resolver: bytes) -> None:
        """The recipient resolved our forward on chain with `resolver` (its channel is
        disputed): the sender pays us the same way."""
        routing_id = routing_id_of(forward)
        if routing_id is None:
            return
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is None or routing.status in ("resolved", "cancelled"):
            return
        incoming = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if incoming is not None:
            await self._settle(incoming, routing_id, resolver, paid=True,
                               amount=forward.balance.amount[0],
                               recipient_channel=forward.channel_address,
                               recipient_transfer_id=forward.transfer_id)

    async def cancel_sender(self, incoming: Transfer, *, strict: bool = False,
                            record: bool = True) -> None:
        """Refund the sender: cancel its transfer to us (we are its responder). An offline
        sender is refunded later (the sweep retries), unless `strict`: then it raises.
        `record`: mark the payment's routing cancelled (not for a transfer that only
        borrowed another payment's routing id)."""
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
            if strict:
                raise
            return
        routing_id = routing_id_of(incoming)
        if routing_id is not None and record:
            await self.store.run(self.store.update_routing_status, routing_id, "cancelled")

    async def _incoming(self, channel_address: Address, transfer_id: bytes) -> Transfer | None:
        stored = await self.engine.channel(channel_address)
        return None if stored is None else stored.transfers.get(transfer_id)

    # --- link payments -------------------------------------------------------------------------

    async def redeem_link(self, routing_id: bytes, signature: bytes,
                          redeemer: Address) -> bytes:
        """Claim an open link for `redeemer` (the link key signed the claim for it) and
        forward it into the redeemer's channel; returns the forward's transfer id.

        The claim is a compare-and-set in the store, so of concurrent claims (even in
        several node processes) exactly one wins. When the forward cannot be made before
        anything is signed (no collateral, ...), the claim is given back and the link
        stays open."""
        routing, incoming, signer = await self._link(routing_id)
        _check_open(routing)
        active = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if active is None or self._expired(active, int(time.time())):
            raise errors.LinkCancelled("this link has expired")
        try:
            claimant = recover_address_bytes(link_claim_digest(routing_id, redeemer), signature)
        except errors.InvalidSignature:
            claimant = b""
        if claimant != signer:
            raise errors.InvalidSignature("the claim is not signed by the link's key")
        if redeemer == incoming.initiator:
            raise errors.TransferToSelf("you cannot claim your own link")
        if await self.find_channel(redeemer) is None:
            raise errors.ChannelNotSetUp(f"{redeemer} has no channel with this node")
        if not await self.store.run(self.store.claim_routing, routing_id,
                                    RoutingStatus.LINK, RoutingStatus.PENDING,
                                    recipient=redeemer):
            current = await self.store.run(self.store.get_routing, routing_id)
            assert current is not None
            _check_open(current)
            raise errors.LinkAlreadyClaimed()
        self.on_event("payment.claimed", {"routingId": "0x" + routing_id.hex()})
        while routing_id in self._inflight:  # a sweep's forward of this claim runs
            await asyncio.sleep(0.01)
        self._inflight.add(routing_id)
        try:
            current = await self.store.run(self.store.get_routing, routing_id)
            assert current is not None
            if current.status in (RoutingStatus.FORWARDED, RoutingStatus.RESOLVED):
                return forward_transfer_id(routing_id)  # a sweep delivered our claim
            if current.status is not RoutingStatus.PENDING:
                raise errors.LinkCancelled()  # a sweep failed to deliver it: refunded
            try:
                forward = await self._prepare(active, routing_id, redeemer)
            except errors.ProtocolError:
                # nothing was signed: give the claim back, the link stays open
                await self.store.run(self.store.claim_routing, routing_id,
                                     RoutingStatus.PENDING, RoutingStatus.LINK,
                                     recipient=None)
                raise
            if forward is not None:
                try:
                    await self._deliver(forward)
                except _OFFLINE:
                    raise  # stays claimed (pending): the sweep delivers it later
                except errors.ProtocolError as exc:
                    await self._fail(active, routing_id, redeemer, exc)
                    raise
        finally:
            self._inflight.discard(routing_id)
        return forward_transfer_id(routing_id)

    async def cancel_link(self, routing_id: bytes, requester: Address) -> None:
        """The creator takes back an unclaimed link: link -> refunding (no claim can win
        after that), refund the sender's transfer, -> cancelled. A cancel that did not
        finish (refunding) is finished by a retry or by the sweep."""
        routing, incoming, _signer = await self._link(routing_id)
        if requester != incoming.initiator:
            raise errors.NotLinkCreator()
        if routing.status is not RoutingStatus.REFUNDING:
            _check_open(routing)
            if not await self.store.run(self.store.claim_routing, routing_id,
                                        RoutingStatus.LINK, RoutingStatus.REFUNDING,
                                        recipient=None):
                current = await self.store.run(self.store.get_routing, routing_id)
                assert current is not None
                if current.status is not RoutingStatus.REFUNDING:
                    _check_open(current)
                    raise errors.LinkAlreadyClaimed()
        active = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if active is not None:
            await self.cancel_sender(active, strict=True)
        await self._mark_refunded(routing_id)
        self.on_event("payment.cancelled", {"routingId": "0x" + routing_id.hex(),
                                            "assetId": routing.asset_id, "amount": "0"})

    async def link_status(self, routing_id: bytes) -> dict[str, Any]:
        """What anyone holding the routing id may know: open, claimed, cancelled (also
        once expired) or unknown, and the amount the link holds."""
        try:
            routing, incoming, _signer = await self._link(routing_id)
        except errors.UnknownLink:
            return {"status": "unknown"}
        if routing.status is RoutingStatus.LINK:
            expired = self._expired(incoming, int(time.time()))
            status = "cancelled" if expired else "open"
        elif routing.status in CLAIMED:
            status = "claimed"
        else:
            status = "cancelled"
        return {"status": status, "assetId": routing.asset_id, "amount": str(routing.amount)}

    async def _link(self, routing_id: bytes) -> tuple[Routing, Transfer, bytes]:
        """The routing of a link, the sender's transfer (as created) and the link signer;
        `UnknownLink` when there is none. A link stored but not yet recorded (its create
        was just committed; `forward` records it right after) is recorded here."""
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is None:
            for transfer in await self.store.run(self.store.transfers_by_routing_id,
                                                 routing_id):
                if (transfer.responder == self.address
                        and self._link_signer(transfer) is not None
                        and await self._incoming(transfer.channel_address,
                                                 transfer.transfer_id) is not None):
                    routing = await self._record(transfer, routing_id, is_link=True)
                    break
        if routing is None:
            raise errors.UnknownLink()
        incoming = await self.store.run(self.store.get_transfer, routing.sender_transfer_id,
                                        channel_address=routing.sender_channel)
        signer = None if incoming is None else self._link_signer(incoming)
        if incoming is None or signer is None or incoming.responder != self.address:
            raise errors.UnknownLink()
        return routing, incoming, signer

    async def _mark_refunded(self, routing_id: bytes) -> None:
        with contextlib.suppress(StaleWrite):
            await self.store.run(self.store.update_routing_status, routing_id, "cancelled",
                                 expected=(RoutingStatus.REFUNDING, RoutingStatus.CANCELLED))

    # --- sweeping ----------------------------------------------------------------------------

    async def recover(self, channels: list[Address]) -> int:
        """Find payments stored but never recorded for routing (the node stopped between
        storing the sender's transfer and recording it) and queue them; returns how many."""
        found = 0
        for channel in channels:
            records = await self.store.run(self.store.transfers, channel, active=True)
            for record in records:
                transfer = record.transfer
                routing_id = routing_id_of(transfer)
                if transfer.responder != self.address or routing_id is None:
                    continue
                if await self.store.run(self.store.get_routing, routing_id) is not None:
                    continue
                recipient = transfer.meta.get(RECIPIENT)
                is_link = self._link_signer(transfer) is not None
                quote = self.swap_terms(transfer)
                with contextlib.suppress(AlreadyExists):
                    await self.store.run(
                        self.store.create_routing,
                        routing_id=routing_id,
                        sender_channel=transfer.channel_address,
                        sender_transfer_id=transfer.transfer_id,
                        asset_id=transfer.asset_id,
                        amount=transfer.balance.amount[0],
                        recipient=recipient if isinstance(recipient, str) else None,
                        recipient_asset_id=None if quote is None else quote.asset_out,
                        recipient_amount=None if quote is None else quote.amount_out,
                        status=RoutingStatus.LINK if is_link else RoutingStatus.PENDING,
                    )
                    found += 1
        return found

    async def sweep(self, only_channel: Address | None = None) -> None:
        """Retry what is owed: undelivered forwards, unsettled senders, expired payments,
        unfinished link refunds, locks to enforce on chain. An unclaimed link is never
        forwarded, only refunded when it expires. A routing whose step fails is logged,
        counted and retried on the next sweep; the others go on."""
        now = int(time.time())
        for routing in await self.store.run(self.store.routings_with_status,
                                            ("pending", "forwarded", "link", "refunding")):
            if only_channel is not None and only_channel not in (
                routing.sender_channel, routing.recipient_channel
            ):
                continue
            if routing.routing_id in self._sweeping:
                continue
            self._sweeping.add(routing.routing_id)
            try:
                await self._sweep_one(routing, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping payment %s failed; retrying next round",
                              routing.routing_id.hex())
                self.on_failure("sweep")
            finally:
                self._sweeping.discard(routing.routing_id)

    async def _sweep_one(self, routing: Routing, now: int) -> None:
        incoming = await self._incoming(routing.sender_channel, routing.sender_transfer_id)
        if incoming is None:
            if routing.status is RoutingStatus.REFUNDING:  # refunded, not yet recorded
                await self._mark_refunded(routing.routing_id)
            return
        if routing.status is RoutingStatus.REFUNDING:
            await self.cancel_sender(incoming)
            return
        if (routing.status is RoutingStatus.FORWARDED
                and routing.recipient_transfer_id is not None):
            outgoing = await self.store.run(
                self.store.get_transfer, routing.recipient_transfer_id,
                channel_address=routing.recipient_channel,
            )
            if outgoing is not None and outgoing.resolver is not None:
                await self.settle_sender(outgoing)
                if outgoing.balance.amount[1] > 0:
                    await self._enforce(routing, incoming, outgoing.resolver, now)
                return
        revealed = await self._revealed_for_forward(routing, incoming)
        if revealed is not None:
            # the recipient can claim the forward on chain: the sender pays us the same
            if not await self._settle(incoming, routing.routing_id, revealed, paid=True,
                                      amount=routing.amount):
                await self._enforce(routing, incoming, revealed, now)
            return
        if self._expired(incoming, now):
            if routing.status is RoutingStatus.LINK and not await self.store.run(
                self.store.claim_routing, routing.routing_id, RoutingStatus.LINK,
                RoutingStatus.REFUNDING, recipient=None,
            ):
                return  # claimed (or cancelled) meanwhile
            await self.cancel_sender(incoming)
            self.on_event("payment.expired", {"routingId": "0x" + routing.routing_id.hex()})
        elif routing.status is RoutingStatus.PENDING:
            await self.forward(incoming)

    async def _revealed_for_forward(self, routing: Routing, incoming: Transfer) -> bytes | None:
        """The resolver of a forwarded hashlock whose preimage the chain shows registered
        by the forward's expiry (so the recipient can claim the forward on chain); None
        otherwise."""
        enforcement = self.enforcement
        if (enforcement is None or routing.status not in (RoutingStatus.PENDING,
                                                          RoutingStatus.FORWARDED)
                or self._definition(incoming) is not HASHLOCK):
            return None
        lock, _expiry = HASHLOCK.decode_state(incoming.initial_state)
        registered = enforcement.registered(lock)
        preimage = enforcement.preimage(lock)
        if registered == 0 or preimage is None:
            return None
        forward = await self._signed_forward(routing, incoming)
        if forward is None:
            return None
        _lock, forward_expiry = HASHLOCK.decode_state(forward)
        if forward_expiry != 0 and registered > forward_expiry:
            return None  # revealed too late for the recipient: the forward is refunded
        return HASHLOCK.encode_resolver(preimage)

    async def _signed_forward(self, routing: Routing, incoming: Transfer) -> bytes | None:
        """The initial state of the forward the node signed for this routing, if any."""
        forward_id = forward_transfer_id(routing.routing_id)
        if routing.recipient_channel is not None:
            stored = await self.store.run(self.store.get_transfer, forward_id,
                                          channel_address=routing.recipient_channel)
            if stored is not None:
                return stored.initial_state
        recipient = routing.recipient or incoming.meta.get(RECIPIENT)
        if not isinstance(recipient, str):
            return None
        channel = await self.find_channel(recipient)
        held = None if channel is None else await self.engine.channel(channel.channel_address)
        if held is None:
            return None
        if forward_id in held.transfers:
            return held.transfers[forward_id].initial_state
        pending = held.pending_update
        if (pending is not None and isinstance(pending.details, CreateDetails)
                and pending.details.transfer_id == forward_id):
            return pending.details.initial_state
        return None

    async def _enforce(self, routing: Routing, incoming: Transfer, resolver: bytes,
                       now: int) -> None:
        """The sender owes us `resolver`'s payment but has not settled: register its
        preimage on chain before its lock expires, and dispute its channel once it stayed
        silent long enough after the expiry (the node's exit then collects on chain)."""
        enforcement = self.enforcement
        if enforcement is None:
            return
        if await self._incoming(incoming.channel_address, incoming.transfer_id) is None:
            return  # settled meanwhile
        if enforcement.disputed(incoming.channel_address):
            return
        definition = self._definition(incoming)
        expiry = definition.expiry(incoming.initial_state)
        evidence = definition.evidence(incoming.initial_state, resolver, self.engine.rules()
                                       .context(enforcement.chain_id,
                                                incoming.transfer_definition))
        if expiry == 0 or evidence is None:
            return  # never expires: the sender settles whenever it comes back
        registered = enforcement.registered(evidence_hash(evidence))
        if registered == 0 and now >= expiry - enforcement.reveal_margin:
            log.warning("sender of %s has not settled and its condition expires in %d s: "
                        "registering its evidence on chain", routing.routing_id.hex(),
                        expiry - now)
            await enforcement.register(evidence)
        elif 0 < registered <= expiry and now >= expiry + enforcement.dispute_unsettled_after:
            log.warning("sender of %s stayed silent after its lock expired: disputing "
                        "channel %s to collect on chain", routing.routing_id.hex(),
                        incoming.channel_address)
            await enforcement.dispute(incoming.channel_address)

    def _expired(self, transfer: Transfer, now: int) -> bool:
        expiry = self._definition(transfer).expiry(transfer.initial_state)
        return bool(expiry != 0 and expiry <= now)


def _check_open(routing: Routing) -> None:
    """Nothing when the link is open; else why it cannot be claimed or cancelled."""
    if routing.status is RoutingStatus.LINK:
        return
    if routing.status in CLAIMED:
        raise errors.LinkAlreadyClaimed()
    raise errors.LinkCancelled()


def _offline_errors() -> tuple[type[BaseException], ...]:
    from ..messaging import MessagingTimeout, NoResponders

    return (MessagingTimeout, NoResponders, RecipientOffline, TimeoutError)


_OFFLINE = _offline_errors()
