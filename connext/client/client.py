"""The light client: a user's keys, their channel with the node, and payments.

`Client` runs the update protocol for the user's side of one channel with one node, over
NATS, with its own store. Payments are hashlocks under the hood: for a plain `transfer`
the preimage is encrypted to the recipient's public key (ECIES), so the node cannot claim
it; the recipient's client decrypts and resolves at once. Amounts are integers in base
units. The private key never leaves this object and is never logged.

A link payment (`create_link`) names no recipient: its preimage lives only in the link's
code. Whoever holds the code claims it (`redeem_link`) by signing their own address with a
key derived from the secret, so the node forwards it to them and nobody who saw only the
lock can claim it; the creator can take back an unclaimed link (`cancel_link`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ecies

from ..chain.channel import ChannelDispute
from ..chain.contracts import Sender, connect, contract
from ..chain.deploy import Deployment
from ..chain.deposits import ChainDeposits
from ..chain.secrets import SecretWatcher
from ..chain.watchtower import Watchtower
from ..engine import ChannelEngine, Committed
from ..engine.engine import PAYLOAD_SIGNED, REPLAY_SAFE
from ..engine.recovery import RESPONDER, Recovery
from ..messaging import Messaging, MessagingTimeout, NoResponders, RemoteError
from ..protocol import errors
from ..protocol.channel import (
    DEFAULT_BOUNDS,
    Applied,
    Bounds,
    Rules,
    create_update,
    deposit_update,
    resolve_update,
)
from ..protocol.encoding import channel_address, keccak, withdraw_commitment_digest
from ..protocol.serialization import hexb, parse_bytes
from ..protocol.signing import SECP256K1_N, Signer
from ..protocol.swaps import SwapQuote
from ..protocol.transfers import DEFINITIONS, HASHLOCK, SIGNED, WITHDRAW, lock_hash
from ..protocol.types import (
    ETH,
    Address,
    ChannelState,
    CreateDetails,
    ResolveDetails,
    Transfer,
    Update,
    UpdateType,
)
from ..store import ChannelStore, StoredChannel
from . import locks, outcomes, swaps, unilateral
from .streams import CLOSE_METHOD, VOUCHERS_METHOD, Streams
from .unilateral import Dispute, ExitProgress

log = logging.getLogger(__name__)

DEFAULT_PAYMENT_TIMEOUT = 3600
"""Seconds until an unclaimed payment expires and is refunded."""

PUBLIC_KEY_CACHE = 4096
"""Recipients' public keys kept (each checked against its address once)."""

DEFAULT_LINK_TIMEOUT = 7 * 24 * 3600
"""Seconds until an unclaimed link payment expires and is refunded to its creator."""

EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class PaymentResult:
    routing_id: bytes
    transfer_id: bytes
    status: str
    """"completed" (the recipient was paid), "cancelled" (refunded) or "pending"."""


@dataclass(frozen=True)
class LinkPayment:
    """A link payment we created: whoever gets `code` can claim `amount` (less the node's
    fee). Keep `code` secret until you share it; the node never sees `secret`."""

    routing_id: bytes
    transfer_id: bytes
    """Our transfer to the node, locked until the link is claimed or cancelled."""
    secret: bytes
    asset_id: Address
    amount: int
    status: str = "open"
    """As our channel shows it: "pending" (not locked in yet), "open", "claimed",
    "cancelled"."""

    @property
    def code(self) -> str:
        """What goes in a link URL: "0x<routing id hex>.0x<secret hex>"."""
        return f"0x{self.routing_id.hex()}.0x{self.secret.hex()}"

    def __repr__(self) -> str:  # never show the secret
        return (f"LinkPayment(routing_id=0x{self.routing_id.hex()}, asset_id={self.asset_id}, "
                f"amount={self.amount})")


def parse_link_code(code: str) -> tuple[bytes, bytes]:
    """(routing id, secret) of a link code; `InvalidLink` on anything malformed."""
    if not isinstance(code, str):
        raise errors.InvalidLink()
    parts = code.strip().split(".")
    if len(parts) != 2:
        raise errors.InvalidLink()
    values = []
    for part in parts:
        if len(part) != 66 or not part.startswith("0x"):
            raise errors.InvalidLink()
        try:
            value = bytes.fromhex(part[2:])
        except ValueError:
            raise errors.InvalidLink() from None
        if len(value) != 32:  # fromhex skips whitespace
            raise errors.InvalidLink()
        values.append(value)
    routing_id, secret = values
    if _link_key_bytes(secret) is None:
        raise errors.InvalidLink()
    return routing_id, secret


def link_key(secret: bytes) -> Signer:
    """The link key: keccak("connext-link-key" ++ secret) as a secp256k1 private key. Its
    address (the link signer) is in the link payment's meta; it signs claims."""
    key = _link_key_bytes(secret)
    if key is None:
        raise errors.InvalidLink()
    return Signer(key)


def _link_key_bytes(secret: bytes) -> bytes | None:
    key = keccak(b"connext-link-key" + secret)
    return key if 0 < int.from_bytes(key, "big") < SECP256K1_N else None


def link_claim_digest(routing_id: bytes, redeemer: Address) -> bytes:
    """What the link key signs to claim the link for `redeemer` (docs/PROTOCOL.md)."""
    return keccak(b"connext-link-claim" + routing_id + bytes.fromhex(redeemer[2:]))


@dataclass(frozen=True)
class WithdrawResult:
    transfer_id: bytes
    transaction_hash: str | None
    status: str
    """"confirmed" (paid on chain), "failed", or "pending"."""


class Client:
    def __init__(
        self,
        signer: Signer,
        *,
        node_address: Address,
        nats_url: str,
        chain_url: str,
        database_url: str,
        deployment: Deployment,
        request_timeout: float = 10.0,
        watch_interval: float = 5.0,
        bounds: Bounds = DEFAULT_BOUNDS,
        reveal_margin: int = 300,
    ) -> None:
        """`watch_interval`: seconds between the watchtower's looks at the chain (a dispute
        of a stale state is answered with our latest, registered preimages are read); 0
        turns it off. `bounds`: the channel and transfer timeouts we accept (a node that
        proposes others is refused). `reveal_margin`: a payment to us that the node has
        not countersigned gets its preimage registered on chain this many seconds before
        its lock expires (connext/client/locks.py)."""
        self.signer = signer
        self.address = signer.address
        self.node_address = node_address
        self.nats_url = nats_url
        self.chain_url = chain_url
        self.database_url = database_url
        self.deployment = deployment
        self.network = deployment.network
        self.request_timeout = request_timeout
        self.bounds = bounds
        self.reveal_margin = reveal_margin
        self.secrets: SecretWatcher | None = None
        self.definition_names = {addr: name for name, addr in deployment.definitions.items()}
        self.definition_address = dict(deployment.definitions)
        net = self.network
        self.channel_address = channel_address(
            net.channel_factory, net.channel_mastercopy, node_address, self.address, net.chain_id
        )
        self._handlers: dict[str, list[EventHandler]] = {}
        self._waiters: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._claiming: set[bytes] = set()
        self._link_secrets: dict[bytes, bytes] = {}
        """Secrets of links we are redeeming, by routing id, until the forward is settled:
        a forward that arrives late (after a timeout) is still claimed."""
        self._link_waiters: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self.claim_interval = 1.0
        self.watch_interval = watch_interval
        self._watching: asyncio.Task[None] | None = None
        self._dispute_seen = False
        self.before_chain_transaction: Callable[[], Awaitable[None]] | None = None
        """Called before the client sends a transaction of its own on chain (an automatic
        answer to a dispute): e.g. to make sure the user's account can pay the gas."""
        self._connected = False
        self._node_info: dict[str, Any] | None = None
        self.streams = Streams(self)
        """Metered streams we pay or are paid by (connext/client/streams.py)."""

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def connect(cls, signer: Signer, **kwargs: Any) -> Client:
        client = cls(signer, **kwargs)
        await client.start()
        return client

    async def start(self) -> None:
        self.w3 = connect(self.chain_url)
        self.store = await asyncio.to_thread(ChannelStore.open, self.database_url)
        self.messaging = Messaging(self.signer, self.nats_url, seen_log=self.store)
        self._public_keys: OrderedDict[Address, bytes] = OrderedDict()
        await self.messaging.connect()
        self.deposits = ChainDeposits(self.w3)
        self.secrets = SecretWatcher(self.w3, self.store, self.deployment.secret_registry,
                                     start_block=self.deployment.block_number,
                                     poll_interval=self.watch_interval or 5.0)
        await self.secrets.load()
        self.engine = ChannelEngine(
            self.signer, self.store, self.messaging, self.rules, self.deposits,
            request_timeout=self.request_timeout, yields_on_collision=True,
            policy=self._policy, records=self._commit_events, follow_up=self._claim_at_once,
        )
        self.engine.on_commit(self._on_commit)
        self.engine.on_void(self._propose_again)
        await self.streams.load()
        for method, handler in self.engine.handlers().items():
            self._bind(method, handler)
        self._bind("withdrawal.confirmed", self._on_withdrawal)
        self._bind("withdrawal.failed", self._on_withdrawal)
        # a stream's payer talks to us directly: any sender, checked by the streams
        self.messaging.handle(VOUCHERS_METHOD, self._from_anyone(self.streams.handle_vouchers),
                              replay_safe=True)  # a replayed voucher is not increasing
        self.messaging.handle(CLOSE_METHOD, self._from_anyone(self.streams.handle_close),
                              replay_safe=True)
        await self.messaging.serve()
        self._connected = True
        self.recovery = Recovery(
            self.engine,
            pending_channels=self._pending_channels,
            transfers=self._active_list,
            duties={("Hashlock", RESPONDER): self._look_after,
                    ("Signed", RESPONDER): self._look_after,
                    ("Stream", RESPONDER): self._look_after,
                    ("Withdraw", RESPONDER): self._countersign_reclaim},
            definition_names=self.definition_names, interval=self.claim_interval)
        self._claimer = asyncio.get_running_loop().create_task(self.recovery.run())
        if self.watch_interval > 0:
            watchtower = Watchtower(
                self.w3, self.store, self.address, self._answer_dispute,
                start_block=self.deployment.block_number, poll_interval=self.watch_interval,
                on_disputed=self._on_disputed)
            self._watching = asyncio.get_running_loop().create_task(
                _both(watchtower.run(), self.secrets.run()))
        if await self.engine.channel(self.channel_address) is not None:
            try:
                disputed = await asyncio.to_thread(unilateral.disputed_on_chain, self)
            except Exception as exc:  # the chain is unreachable: the node would refuse
                log.info("cannot read the channel's dispute on chain: %s", exc)
                disputed = False
            if disputed:
                self.engine.disputed.add(self.channel_address)  # closing: no more updates
                return
            try:
                await self._come_online()
            except (NoResponders, MessagingTimeout) as exc:
                # the node is down: the local copy still shows the channel and can
                # force-close it; `sync()` (or the next payment) catches up later
                log.info("node not answering (%s); working from the local copy", exc)

    async def close(self) -> None:
        if self._connected:
            self._connected = False
            for task in (self._claimer, self._watching):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.messaging.close()
            await self.store.run(self.store.close)

    def rules(self) -> Rules:
        return Rules(
            definitions={a: DEFINITIONS[n] for a, n in self.definition_names.items()},
            now=int(time.time()),
            bounds=self.bounds,
            registered={} if self.secrets is None else self.secrets.registered,
        )

    async def _policy(self, update: Update, applied: Applied) -> None:
        """What we refuse from the node beyond the protocol's rules: a reclaim (a Withdraw
        of the node's own) whose commitment is not the one the transfer stands for, with
        the nonce the channel assigns (else the node could spend the nonce one of our own
        withdrawals will need, and that withdrawal would fail on chain)."""
        details = update.details
        if (update.type is UpdateType.CREATE and isinstance(details, CreateDetails)
                and self.definition_names.get(details.transfer_definition) == "Withdraw"):
            transfer = applied.transfer
            assert transfer is not None
            _sig, initiator, responder, commitment, nonce, fee = WITHDRAW.decode_state(
                transfer.initial_state)
            expected = withdraw_commitment_digest(
                self.network.chain_id, self.channel_address, self.node_address,
                transfer.asset_id, transfer.balance.amount[0] - fee, update.nonce)
            if ((initiator, responder) != (self.node_address, self.address)
                    or nonce != update.nonce or commitment != expected):
                raise errors.InvalidTransferState(
                    "a reclaim must commit to the node's own address, its amount and the "
                    "channel nonce of its update")

    def _bind(self, method: str,
              handler: Callable[[Address, dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        async def on_message(envelope: Any) -> dict[str, Any]:
            if envelope.sender != self.node_address:
                raise errors.InvalidUpdate("this client only talks to its node")
            return await handler(envelope.sender, envelope.body)

        self.messaging.handle(method, on_message, replay_safe=method in REPLAY_SAFE,
                              payload_signed=method in PAYLOAD_SIGNED)

    @staticmethod
    def _from_anyone(handler: Callable[[Address, dict[str, Any]], Awaitable[dict[str, Any]]],
                     ) -> Callable[[Any], Awaitable[dict[str, Any]]]:
        async def on_message(envelope: Any) -> dict[str, Any]:
            return await handler(envelope.sender, envelope.body)

        return on_message

    async def _request(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """A request to the node; an error reply is re-raised as the matching typed error
        (`LinkAlreadyClaimed`, `RateLimited`, ...) with the remote error as its cause."""
        try:
            return await self.messaging.request(self.node_address, method, body,
                                                timeout=self.request_timeout)
        except RemoteError as exc:
            cls = errors.error_class(exc.code)
            if cls is None:
                raise
            raise cls(exc.message) from exc

    async def sync(self) -> None:
        """Catch up with the node and settle what waited (e.g. after the node restarted)."""
        await self._come_online()

    async def _come_online(self) -> None:
        try:
            await self.engine.sync(self.channel_address)
        except Exception as exc:
            log.info("sync on connect failed: %s", exc)
        await self.recovery.round()
        await self._request("channel.online", {"channelAddress": self.channel_address})

    # --- events ------------------------------------------------------------------------

    def on(self, event: str, handler: EventHandler) -> None:
        """Subscribe to "transfer.sent", "transfer.received", "transfer.incoming",
        "transfer.completed", "transfer.cancelled", "deposit.reconciled", "collateral.added",
        "withdrawal.confirmed", "withdrawal.failed", "channel.updated" (or "*" for all)."""
        self._handlers.setdefault(event, []).append(handler)

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Record the event in the activity log, then tell the subscribers."""
        await self.store.run(self.store.append_event, self.channel_address, event, data)
        await self._tell(event, data)

    async def _tell(self, event: str, data: dict[str, Any]) -> None:
        for handler in self._handlers.get(event, []) + self._handlers.get("*", []):
            try:
                result = handler({"event": event, **data})
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("event handler for %s failed", event)

    # --- channel -----------------------------------------------------------------------

    async def setup(self) -> ChannelState:
        """Open the channel with the node (idempotent)."""
        await self._request("channel.setup", {"publicKey": hexb(self.signer.public_key)})
        state = await self.channel()
        await self._request("channel.online", {"channelAddress": self.channel_address})
        return state

    async def channel(self) -> ChannelState:
        stored = await self.engine.channel(self.channel_address)
        if stored is None:
            raise errors.ChannelNotSetUp("no channel yet: call setup()")
        return stored.state

    async def active_transfers(self) -> dict[bytes, Transfer]:
        stored = await self.engine.channel(self.channel_address)
        return {} if stored is None else dict(stored.transfers)

    async def balances(self) -> dict[Address, int]:
        """Our spendable balance per asset (base units)."""
        state = await self.channel()
        return {asset: bal.bob for asset, bal in zip(state.asset_ids, state.balances,
                                                     strict=True)}

    async def history(self, *, after_id: int = 0, limit: int = 100) -> list[Any]:
        return await self.store.run(self.store.events, self.channel_address,
                                    after_id=after_id, limit=limit)

    async def restore(self) -> ChannelState:
        """Rebuild our copy of the channel from the node, verifying every signature."""
        return await self.engine.restore(self.node_address, self.channel_address)

    # --- deposits ------------------------------------------------------------------------

    async def deposit(self, asset_id: Address, amount: int) -> ChannelState:
        """Send `amount` from our own account to the channel address, then reconcile."""
        if amount <= 0:
            raise errors.InvalidAmount("a deposit must be positive")
        await asyncio.to_thread(self._send_deposit, asset_id, amount)
        return await self.reconcile_deposit(asset_id)

    def _send_deposit(self, asset_id: Address, amount: int) -> None:
        sender = Sender(self.w3, self.signer.private_key)
        if asset_id == ETH:
            sender.send_eth(self.channel_address, amount)
        else:
            token = contract(self.w3, "TestToken", asset_id)
            sender.transact(token.functions.transfer(self.channel_address, amount))

    async def reconcile_deposit(self, asset_id: Address) -> ChannelState:
        """Credit whatever the chain shows deposited beyond what the channel processed."""
        state = await self.channel()
        alice_total, bob_total = await self.deposits.total_deposits(state, asset_id)
        index = state.asset_index(asset_id)
        if index is not None and (state.processed_deposits_a[index],
                                  state.processed_deposits_b[index]) == (alice_total, bob_total):
            return state
        try:
            committed = await self.engine.propose(
                self.channel_address,
                lambda s, _t: deposit_update(s, self.address, asset_id, alice_total, bob_total),
            )
        except errors.InvalidDeposit:
            state = await self.channel()  # the node's watcher may have reconciled it first
            index = state.asset_index(asset_id)
            if index is not None and state.processed_deposits_b[index] >= bob_total:
                return state
            raise
        return committed.applied.state

    # --- payments --------------------------------------------------------------------------

    async def transfer(
        self,
        recipient: Address,
        asset_id: Address,
        amount: int,
        *,
        timeout: int = DEFAULT_PAYMENT_TIMEOUT,
        wait: float | None = 30.0,
        meta: dict[str, Any] | None = None,
        payment_id: str | bytes | None = None,
        quote: SwapQuote | None = None,
    ) -> PaymentResult:
        """Pay `recipient` through the node; with `wait`, until it is paid or refunded.

        `payment_id` (an idempotency key of the caller's choosing): calling again with the
        same key returns the same payment and never pays twice. A call that cannot tell
        whether its payment landed (the node did not answer) returns status "pending" with
        its ids instead of raising; `payment_status` says later how it ended. With a
        `quote` (`quote(...)`), the recipient receives the quote's asset and amount out."""
        self._check_open()
        routing_id = self._routing_id(payment_id)
        extra: dict[str, Any] = {}
        if quote is not None:
            meta = {**(meta or {}), **swaps.quote_meta(quote, asset_id, amount)}
        initial = b""
        if await outcomes.ours(self, outcomes.transfer_id_of(routing_id)) is None:
            public_key = await self._public_key_of(recipient)
            preimage = os.urandom(32)
            extra = {"encryptedPreimage": hexb(ecies.encrypt(public_key, preimage))}
            initial = HASHLOCK.encode_state(lock_hash(preimage), int(time.time()) + timeout)
        return await self._send(recipient, asset_id, amount, "Hashlock", initial, timeout,
                                {**(meta or {}), **extra}, wait, routing_id)

    async def quote(self, asset_in: Address, asset_out: Address, amount_in: int, *,
                    ttl: int | None = None) -> SwapQuote:
        """The node's signed quote: paying `amount_in` of `asset_in` delivers its
        `amount_out` of `asset_out` (fee taken) until its `expiry`. Use it once, with
        `transfer(..., quote=q)` or `swap(q)`."""
        return await swaps.request_quote(self, asset_in, asset_out, amount_in, ttl=ttl)

    async def swap(self, quote: SwapQuote, *, wait: float | None = 30.0,
                   payment_id: str | bytes | None = None) -> PaymentResult:
        """Convert a balance in our own channel at `quote`: pay the quote's amount in to
        ourselves through the node, which pays us its amount out in the other asset."""
        self._check_open()
        routing_id = self._routing_id(payment_id)
        extra: dict[str, Any] = {}
        initial = b""
        timeout = DEFAULT_PAYMENT_TIMEOUT
        if await outcomes.ours(self, outcomes.transfer_id_of(routing_id)) is None:
            preimage = os.urandom(32)
            extra = {"encryptedPreimage": hexb(ecies.encrypt(self.signer.public_key,
                                                             preimage))}
            initial = HASHLOCK.encode_state(lock_hash(preimage), int(time.time()) + timeout)
        meta = {**swaps.quote_meta(quote, quote.asset_in, quote.amount_in), **extra,
                "recipient": self.address}
        return await self._route(quote.asset_in, quote.amount_in, "Hashlock", initial, timeout,
                                 meta, wait, routing_id)

    async def _public_key_of(self, party: Address) -> bytes:
        """`party`'s public key, from the node the first time (checked against the address,
        so a cached one can be trusted for good)."""
        known = self._public_keys.get(party)
        if known is not None:
            self._public_keys.move_to_end(party)
            return known
        reply = await self._request("party.public_key", {"address": party})
        public_key = parse_bytes(reply.get("publicKey"), "publicKey", 65)
        if keccak(public_key[1:])[12:] != bytes.fromhex(party[2:]):
            raise errors.InvalidSignature("the node returned a key that is not the recipient's")
        self._public_keys[party] = public_key
        if len(self._public_keys) > PUBLIC_KEY_CACHE:
            self._public_keys.popitem(last=False)
        return public_key

    async def conditional_transfer(
        self,
        recipient: Address,
        asset_id: Address,
        amount: int,
        definition: str,
        initial_state: bytes,
        *,
        timeout: int = DEFAULT_PAYMENT_TIMEOUT,
        meta: dict[str, Any] | None = None,
        wait: float | None = None,
        payment_id: str | bytes | None = None,
    ) -> PaymentResult:
        """A routed transfer under any registered definition; the recipient resolves it.
        `payment_id` as for `transfer`."""
        return await self._send(recipient, asset_id, amount, definition, initial_state,
                                timeout, meta or {}, wait, self._routing_id(payment_id))

    async def payment_status(self, *, routing_id: bytes | None = None,
                             payment_id: str | bytes | None = None) -> str:
        """How a payment of ours (or link) ended, from our own copy of the channel:
        "completed", "cancelled" (refunded), "pending" (not settled yet, or its fate not
        known yet: the client keeps re-sending it) or "unknown" (never made)."""
        if routing_id is None:
            if payment_id is None:
                raise ValueError("give the payment's routing_id or its payment_id")
            routing_id = outcomes.routing_id_for(self, payment_id)
        known = await outcomes.ours(self, outcomes.transfer_id_of(routing_id))
        return outcomes.UNKNOWN if known is None else known[1]

    def _routing_id(self, payment_id: str | bytes | None) -> bytes:
        return os.urandom(32) if payment_id is None else outcomes.routing_id_for(self,
                                                                                  payment_id)

    async def _send(self, recipient: Address, asset_id: Address, amount: int, definition: str,
                    initial_state: bytes, timeout: int, meta: dict[str, Any],
                    wait: float | None, routing_id: bytes) -> PaymentResult:
        if recipient == self.address:
            raise errors.TransferToSelf("you cannot pay yourself")
        return await self._route(asset_id, amount, definition, initial_state, timeout,
                                 {**meta, "recipient": recipient}, wait, routing_id)

    async def _route(self, asset_id: Address, amount: int, definition: str,
                     initial_state: bytes, timeout: int, meta: dict[str, Any],
                     wait: float | None, routing_id: bytes) -> PaymentResult:
        """Create a routed transfer to the node (meta names a recipient, or a link signer)
        under `routing_id`, unless we made it before (then that one's outcome counts);
        with `wait`, until the node settles it."""
        self._check_open()
        if amount <= 0:
            raise errors.InvalidAmount("an amount must be positive")
        if definition not in self.definition_address:
            raise errors.UnknownTransferDefinition(f"unknown transfer definition {definition}")
        transfer_id = outcomes.transfer_id_of(routing_id)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[transfer_id] = waiter
        try:
            known = await outcomes.ours(self, transfer_id)
            if known is not None:  # the same payment id again: the same payment
                outcomes.check_same_terms(known[0], asset_id, amount, meta)
                status = known[1]
            else:
                status = await self._create(transfer_id, routing_id, lambda s, _t: create_update(
                    s, self.address, transfer_id=transfer_id,
                    transfer_definition=self.definition_address[definition],
                    asset_id=asset_id, amount=amount, initial_state=initial_state,
                    transfer_timeout=self._transfer_timeout(timeout),
                    meta={**meta, "routingId": hexb(routing_id)},
                ))
            if wait is None or status != outcomes.PENDING:
                return PaymentResult(routing_id, transfer_id, status)
            try:
                outcome = await asyncio.wait_for(asyncio.shield(waiter), wait)
            except TimeoutError:
                return PaymentResult(routing_id, transfer_id,
                                     await self.payment_status(routing_id=routing_id))
            return PaymentResult(routing_id, transfer_id, outcome["status"])
        finally:
            self._waiters.pop(transfer_id, None)

    async def _create(self, transfer_id: bytes, routing_id: bytes, build: Any) -> str:
        """Create our transfer; "pending" once it is locked in (or when we cannot tell:
        our signed proposal is stored, and the recovery re-sends it until it lands)."""
        try:
            await self._propose_create(transfer_id, build)
        except Exception as exc:
            known = await outcomes.ours(self, transfer_id)
            if known is None:
                raise  # refused, or never signed: nothing was paid
            log.info("payment 0x%s: no answer yet (%s); it stays pending",
                     routing_id.hex(), exc)
            return known[1]
        return outcomes.PENDING

    def _transfer_timeout(self, timeout: int) -> int:
        """A transfer's on-chain dispute window: the payment's timeout, but never shorter
        than our bound (a payment may expire in seconds; answering on chain may not)."""
        return max(timeout, self.bounds.min_transfer_timeout)

    async def _propose_create(self, transfer_id: bytes, build: Any) -> None:
        """Create our transfer; a create that landed on an earlier, interrupted attempt
        (its random id is in the channel, active or even resolved since) counts as done."""
        try:
            await self.engine.propose(self.channel_address, build)
        except errors.DuplicateTransfer:
            landed = await self.store.run(self.store.get_transfer, transfer_id,
                                          channel_address=self.channel_address)
            if landed is None or landed.initiator != self.address:
                raise

    async def _propose_again(self, voided: Update) -> None:
        """A transfer we proposed was made void (the node signed another update at its
        nonce, e.g. while we could not hear its answer): propose the same transfer again on
        the channel as it is now, so a payment the SDK reported pending still happens (the
        engine refuses it as a duplicate if it landed after all). One that can no longer
        be made (expired, no balance) is dropped: nothing was paid."""
        details = voided.details
        if voided.type is not UpdateType.CREATE or not isinstance(details, CreateDetails):
            return
        log.info("transfer 0x%s was made void by the node's update at its nonce; proposing "
                 "it again", details.transfer_id.hex())
        try:
            await self._propose_create(details.transfer_id, lambda s, _t: create_update(
                s, self.address, transfer_id=details.transfer_id,
                transfer_definition=details.transfer_definition, asset_id=details.asset_id,
                amount=details.balance.amount[0], initial_state=details.initial_state,
                transfer_timeout=details.transfer_timeout, meta=details.meta,
            ))
        except errors.ProtocolError as exc:
            log.warning("transfer 0x%s cannot be proposed again (%s): it was not made",
                        details.transfer_id.hex(), exc)

    # --- link payments ---------------------------------------------------------------------

    async def create_link(self, asset_id: Address, amount: int, *,
                          timeout: int = DEFAULT_LINK_TIMEOUT,
                          payment_id: str | bytes | None = None) -> LinkPayment:
        """Lock `amount` in a payment anyone holding the returned link's `code` can claim
        (less the node's fee); returns once our transfer to the node is double-signed
        (status "open"), or "pending" when the node did not answer (it is re-sent; the
        link works once it lands). Unclaimed, it is refunded when `timeout` seconds have
        passed (or by `cancel_link`). `payment_id`: the same key returns the same link.
        Its secret is derived from our key, so `links()` shows it again at any time."""
        routing_id = self._routing_id(payment_id)
        secret = outcomes.link_secret(self, routing_id)
        initial = HASHLOCK.encode_state(lock_hash(secret), int(time.time()) + timeout)
        meta = {"link": {"signer": link_key(secret).address}}
        result = await self._route(asset_id, amount, "Hashlock", initial, timeout, meta, None,
                                   routing_id)
        locked = await self.store.run(self.store.transfer_record, result.transfer_id,
                                      channel_address=self.channel_address)
        return LinkPayment(result.routing_id, result.transfer_id, secret, asset_id, amount,
                           _link_status(result.status, locked=locked is not None))

    async def links(self) -> list[LinkPayment]:
        """Every link we created, newest first, with its code and status as our channel
        shows it: "pending" (not locked in yet), "open" (locked; perhaps claimed already:
        `link_status` asks the node), "claimed" or "cancelled" (refunded)."""
        found: list[LinkPayment] = []
        records = await self.store.run(self.store.transfers, self.channel_address)
        candidates = [(r.transfer.transfer_id, r.transfer.meta) for r in records
                      if r.transfer.initiator == self.address]
        stored = await self.engine.channel(self.channel_address)
        pending = None if stored is None else stored.pending_update
        if pending is not None and isinstance(pending.details, CreateDetails):
            candidates.append((pending.details.transfer_id, pending.details.meta))
        for transfer_id, meta in candidates:
            routing_id = _routing_id_from(meta)
            if "link" not in meta or routing_id is None:
                continue
            known = await outcomes.ours(self, transfer_id)
            if known is None:
                continue
            created, status = known
            found.append(LinkPayment(routing_id, transfer_id,
                                     outcomes.link_secret(self, routing_id), created.asset_id,
                                     created.balance.amount[0],
                                     _link_status(status, locked=transfer_id in {
                                         r.transfer.transfer_id for r in records})))
        return found[::-1]

    async def redeem_link(self, code: str, *, wait: float = 30.0) -> PaymentResult:
        """Claim a link payment into our channel: the node forwards it to us and we resolve
        it with the link's secret. Status "completed" once it is in our balance, "pending"
        if that took longer than `wait` (it completes later), "cancelled" if it was
        refunded instead. Raises `InvalidLink`, `UnknownLink`, `LinkAlreadyClaimed`,
        `LinkCancelled`, `InvalidSignature`, `TransferToSelf` (our own link)."""
        routing_id, secret = parse_link_code(code)
        signature = link_key(secret).sign(link_claim_digest(routing_id, self.address))
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._link_waiters[routing_id] = waiter
        self._link_secrets[routing_id] = secret
        settled = False
        try:
            try:
                reply = await self._request("link.redeem", {
                    "routingId": hexb(routing_id), "signature": hexb(signature)})
            except errors.ProtocolError as exc:
                # a refused claim (or an answer that never came: the claim may have won,
                # then the forward is claimed when it arrives; keep the secret for it)
                settled = not isinstance(exc, (RemoteError, TimeoutError))
                raise
            transfer_id = parse_bytes(reply.get("transferId"), "transferId", 32)
            transfer = (await self.active_transfers()).get(transfer_id)
            if transfer is not None:
                try:
                    await self._claim_link(transfer)
                except Exception as exc:  # the claimer retries while the secret is kept
                    log.info("claiming link %s failed, will retry: %s", routing_id.hex(), exc)
            try:
                outcome = await asyncio.wait_for(asyncio.shield(waiter), wait)
            except TimeoutError:
                return PaymentResult(routing_id, transfer_id, "pending")
            settled = True
            return PaymentResult(routing_id, transfer_id, outcome["status"])
        finally:
            if self._link_waiters.get(routing_id) is waiter:
                del self._link_waiters[routing_id]
            if settled:
                self._link_secrets.pop(routing_id, None)

    async def cancel_link(self, routing_id: bytes) -> None:
        """Take back a link payment nobody claimed; returns when the refund is committed in
        our channel. Raises `LinkAlreadyClaimed`, `LinkCancelled`, `UnknownLink`,
        `NotLinkCreator`."""
        transfer_id = outcomes.transfer_id_of(routing_id)
        known = await outcomes.ours(self, transfer_id)
        if known is not None and known[1] == outcomes.PENDING:
            # its creation may not have reached the node yet: finish that first, or the
            # node knows no such link and it would stay locked when it lands later
            await self.engine.finish_pending(self.channel_address)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[transfer_id] = waiter
        try:
            await self._request("link.cancel", {"routingId": hexb(routing_id)})
            if transfer_id in await self.active_transfers():
                # the node replies after the refund is double-signed; our copy is stored
                # before we countersign, so this only waits when the channel was behind
                await asyncio.wait_for(asyncio.shield(waiter), self.request_timeout)
        finally:
            self._waiters.pop(transfer_id, None)

    async def link_status(self, routing_id: bytes) -> str:
        """The node's view of a link: "open", "claimed", "cancelled" (also once expired)
        or "unknown"."""
        reply = await self._request("link.status", {"routingId": hexb(routing_id)})
        status = reply.get("status")
        if status not in ("open", "claimed", "cancelled", "unknown"):
            raise errors.InvalidUpdate(f"the node answered an unknown link status {status!r}")
        return str(status)

    async def _claim_link(self, transfer: Transfer) -> None:
        """Resolve a link forward we are redeeming with the link's secret (once at a time;
        the redeem call, the commit listener and the claimer may all try)."""
        routing_id = _routing_id(transfer)
        secret = None if routing_id is None else self._link_secrets.get(routing_id)
        if secret is None or transfer.transfer_id in self._claiming:
            return
        if self.definition_names.get(transfer.transfer_definition) != "Hashlock":
            return
        lock, _expiry = HASHLOCK.decode_state(transfer.initial_state)
        if lock != lock_hash(secret):
            log.warning("link forward %s is not locked with the link's secret",
                        transfer.transfer_id.hex())
            return
        self._claiming.add(transfer.transfer_id)
        try:
            await self.resolve(transfer.transfer_id, HASHLOCK.encode_resolver(secret))
        except errors.UnknownTransfer:
            pass  # resolved meanwhile
        finally:
            self._claiming.discard(transfer.transfer_id)

    # --- oracle payments -------------------------------------------------------------------

    async def pay_on_oracle(self, recipient: Address, asset_id: Address, amount: int, *,
                            oracle: Address, oracle_payment_id: bytes,
                            timeout: int = DEFAULT_PAYMENT_TIMEOUT, wait: float | None = None,
                            payment_id: str | bytes | None = None) -> PaymentResult:
        """Pay `recipient` once `oracle` signs a receipt for `oracle_payment_id` (32 bytes):
        a Signed transfer through the node that expires after `timeout` seconds (then both
        hops are refunded). The recipient claims it with `claim_oracle_payment`."""
        if len(oracle_payment_id) != 32:
            raise errors.InvalidTransferState("an oracle payment id is 32 bytes")
        state = SIGNED.encode_state(oracle, oracle_payment_id, int(time.time()) + timeout)
        return await self.conditional_transfer(recipient, asset_id, amount, "Signed", state,
                                               timeout=timeout, wait=wait,
                                               meta={"oracle": oracle},
                                               payment_id=payment_id)

    async def claim_oracle_payment(self, transfer_id: bytes, data: bytes,
                                   signature: bytes) -> ChannelState:
        """Claim an oracle payment to us with the oracle's receipt: its signature over
        (payment id, data). A receipt of another signer, or for other data, is refused
        here (`InvalidTransferResolver`) before anything is sent."""
        transfer = (await self.active_transfers()).get(transfer_id)
        if (transfer is None or transfer.responder != self.address
                or self.definition_names.get(transfer.transfer_definition) != "Signed"):
            raise errors.UnknownTransfer(f"no oracle payment 0x{transfer_id.hex()} pays us")
        resolver = SIGNED.encode_resolver(data, signature)
        SIGNED.resolve(transfer.balance, transfer.initial_state, resolver,
                       self.rules().context(self.network.chain_id,
                                            transfer.transfer_definition))
        return await self.resolve(transfer_id, resolver)

    async def resolve(self, transfer_id: bytes, resolver: bytes) -> ChannelState:
        """Resolve a transfer paying us (e.g. an oracle-signed or stream transfer)."""
        committed = await self.engine.propose(
            self.channel_address,
            lambda s, _t: resolve_update(s, self.address, transfer_id, resolver),
        )
        return committed.applied.state

    async def cancel(self, transfer_id: bytes) -> ChannelState:
        """Decline a transfer paying us: the payer is refunded."""
        transfers = await self.active_transfers()
        transfer = transfers.get(transfer_id)
        if transfer is None:
            raise errors.UnknownTransfer(f"no active transfer 0x{transfer_id.hex()}")
        definition = DEFINITIONS[self.definition_names[transfer.transfer_definition]]
        return await self.resolve(transfer_id, definition.cancel_resolver)

    # --- leaving without the node ---------------------------------------------------------

    async def _on_disputed(self, channel_address: Address) -> None:
        """The watchtower saw our channel disputed on chain (by us or by the node)."""
        await self.engine.stop_updating(channel_address)
        if not self._dispute_seen:
            self._dispute_seen = True
            await self._emit("channel.disputed", {"channelAddress": channel_address})

    async def _answer_dispute(self, stored: StoredChannel, dispute: ChannelDispute) -> None:
        """The node disputed a state older than ours: put our latest on chain."""
        if self.before_chain_transaction is not None:
            await self.before_chain_transaction()
        answer = await unilateral.answer(self, stored)
        await self._emit("channel.dispute_answered", {
            "channelAddress": stored.state.channel_address, "staleNonce": dispute.nonce,
            "nonce": answer.nonce, "transactionHash": answer.transaction})

    def _check_open(self) -> None:
        if self.channel_address in self.engine.disputed:
            raise errors.ChannelDisputed()

    async def force_close(self) -> Dispute:
        """Dispute our latest double-signed state on chain, from our own account (it pays
        the gas): the way out when the node stops answering. After the channel's consensus
        window (its `timeout`), `exit_channel` pays out. See connext/client/unilateral.py."""
        return await unilateral.force_close(self)

    async def exit_channel(self, recipient: Address | None = None) -> ExitProgress:
        """After `force_close` and the consensus window: send what the channel owes us to
        `recipient` (ourselves by default). Call again until `done`: a transfer still
        locked on chain waits for its own dispute window."""
        return await unilateral.exit_channel(self, recipient)

    def resolver_we_hold(self, transfer: Transfer) -> bytes | None:
        """The resolver that unlocks `transfer` for us, when it pays us and we can open it:
        a payment's encrypted preimage, the secret of a link we are redeeming, a stream's
        highest voucher, or the resolve we already proposed (an oracle's receipt...)."""
        if transfer.responder != self.address:
            return None
        stored = self.engine._cache.get(self.channel_address)
        pending = None if stored is None else stored.pending_update
        if (pending is not None and isinstance(pending.details, ResolveDetails)
                and pending.details.transfer_id == transfer.transfer_id
                and pending.details.resolver != self._cancel_resolver(transfer)):
            return pending.details.resolver
        name = self.definition_names.get(transfer.transfer_definition)
        if name == "Stream":
            return self.streams.resolver(transfer)
        if name != "Hashlock":
            return None
        lock, _expiry = HASHLOCK.decode_state(transfer.initial_state)
        routing_id = _routing_id(transfer)
        candidates = [] if routing_id is None else [self._link_secrets.get(routing_id)]
        encrypted = transfer.meta.get("encryptedPreimage")
        if isinstance(encrypted, str):
            with contextlib.suppress(Exception):  # not for us, or not a ciphertext at all
                candidates.append(ecies.decrypt(self.signer.private_key,
                                                parse_bytes(encrypted, "meta")))
        for preimage in candidates:
            if preimage is not None and len(preimage) == 32 and lock_hash(preimage) == lock:
                return HASHLOCK.encode_resolver(preimage)
        return None

    # --- withdrawals -------------------------------------------------------------------------

    async def withdraw(self, recipient: Address, asset_id: Address, amount: int, *,
                       wait: float | None = 60.0) -> WithdrawResult:
        """Move `amount` out of the channel to `recipient` on chain; the node pays the gas
        and keeps its withdrawal fee (if it charges one) of `amount`."""
        if amount <= 0:
            raise errors.InvalidAmount("a withdrawal must be positive")
        fee = await self.withdrawal_fee(asset_id)
        if amount <= fee:
            raise errors.InvalidAmount(f"a withdrawal must be more than the node's fee of {fee}")
        transfer_id = os.urandom(32)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[transfer_id] = waiter

        def build(state: ChannelState, _t: Any) -> Any:
            nonce = state.nonce + 1  # the commitment's nonce is its update's channel nonce
            commitment = withdraw_commitment_digest(
                state.network.chain_id, state.channel_address, recipient, asset_id,
                amount - fee, nonce,
            )
            initial = WITHDRAW.encode_state(self.signer.sign(commitment), self.address,
                                            self.node_address, commitment, nonce, fee)
            return create_update(
                state, self.address, transfer_id=transfer_id,
                transfer_definition=self.definition_address["Withdraw"], asset_id=asset_id,
                amount=amount, initial_state=initial,
                transfer_timeout=self._transfer_timeout(DEFAULT_PAYMENT_TIMEOUT),
                meta={"recipient": recipient},
            )

        try:
            await self._propose_create(transfer_id, build)
            if wait is None:
                return WithdrawResult(transfer_id, None, "pending")
            try:
                outcome = await asyncio.wait_for(asyncio.shield(waiter), wait)
            except TimeoutError:
                return WithdrawResult(transfer_id, None, "pending")
            return WithdrawResult(transfer_id, outcome.get("transactionHash"),
                                  outcome["status"])
        finally:
            self._waiters.pop(transfer_id, None)

    async def node_info(self) -> dict[str, Any]:
        """The node's `node.info`: its network, fees, bounds and limits (asked once)."""
        if self._node_info is None:
            self._node_info = await self._request("node.info", {})
        return self._node_info

    async def withdrawal_fee(self, asset_id: Address) -> int:
        """What the node keeps of a withdrawal in `asset_id` (it pays the gas)."""
        info = await self.node_info()
        limits = info.get("limits", {}).get(asset_id) or info.get("defaultLimits") or {}
        return int(limits.get("withdrawalFee", "0"))

    async def _on_withdrawal(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        transfer_id = parse_bytes(body.get("transferId"), "transferId", 32)
        confirmed = "transactionHash" in body
        event = "withdrawal.confirmed" if confirmed else "withdrawal.failed"
        await self._emit(event, body)
        self._settle_waiter(transfer_id, {**body, "status": "confirmed" if confirmed
                                          else "failed"})
        return {}

    def _settle_waiter(self, transfer_id: bytes, outcome: dict[str, Any]) -> None:
        waiter = self._waiters.get(transfer_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)

    # --- reacting to the node's updates ------------------------------------------------------

    def _commit_events(self, committed: Committed) -> list[tuple[str, dict[str, Any]]]:
        """The activity-log events of a stored update: the engine writes them in the
        update's own transaction (`records`), and `_on_commit` tells the subscribers."""
        update, applied = committed.update, committed.applied
        transfer = applied.transfer
        if update.type is UpdateType.DEPOSIT:
            details: Any = update.details
            asset = details.asset_id
            before = committed.previous
            index = None if before is None else before.asset_index(asset)
            ours = details.total_deposits_bob - (
                0 if before is None or index is None else before.processed_deposits_b[index])
            theirs = details.total_deposits_alice - (
                0 if before is None or index is None else before.processed_deposits_a[index])
            balance = str(applied.state.balance_of(asset).bob)
            events = []
            if ours > 0:
                events.append(("deposit.reconciled", {
                    "assetId": asset, "amount": str(ours), "balance": balance}))
            if theirs > 0:  # the node added collateral: it can now pay us more
                events.append(("collateral.added", {
                    "assetId": asset, "amount": str(theirs), "balance": balance}))
            return events
        if transfer is None:
            return []
        definition = self.definition_names.get(transfer.transfer_definition)
        if committed.initiated_by_us and update.type is UpdateType.CREATE:
            if transfer.initiator == self.address and definition != "Withdraw":
                return [("transfer.sent", _transfer_event(transfer))]
            return []
        if update.type is UpdateType.CREATE and transfer.responder == self.address:
            if (definition == "Withdraw" or self._redeeming(transfer)
                    or isinstance(transfer.meta.get("encryptedPreimage"), str)):
                return []  # a reclaim to countersign, a link we redeem, a payment we claim
            return [("stream.opened" if definition == "Stream" else "transfer.incoming",
                     _transfer_event(transfer))]
        if update.type is UpdateType.RESOLVE and transfer.initiator == self.address:
            if definition == "Withdraw":  # the node refused: funds are back (else the
                # on-chain confirmation settles it)
                return ([("withdrawal.failed", _transfer_event(transfer))]
                        if transfer.balance.amount[0] > 0 else [])
            paid = transfer.balance.amount[1] > 0
            return [(f"transfer.{'completed' if paid else 'cancelled'}",
                     _transfer_event(transfer, transfer.balance.amount[1 if paid else 0]))]
        if (update.type is UpdateType.RESOLVE and transfer.responder == self.address
                and transfer.balance.amount[1] > 0):
            return [("transfer.received", _transfer_event(transfer, transfer.balance.amount[1]))]
        return []

    async def _on_commit(self, committed: Committed) -> None:
        update, applied = committed.update, committed.applied
        transfer = applied.transfer
        # every new co-signed state (not logged: the channel's history holds it already)
        state = applied.state
        await self._tell("channel.updated", {
            "nonce": state.nonce, "type": update.type.value,
            "balances": {asset: str(balance.bob)  # ours, per asset, at this nonce
                         for asset, balance in zip(state.asset_ids, state.balances,
                                                   strict=True)}})
        for event, data in committed.events:  # stored with the update
            await self._tell(event, dict(data))
        if transfer is None or (committed.initiated_by_us and update.type is UpdateType.CREATE):
            return
        definition = self.definition_names.get(transfer.transfer_definition)
        if update.type is UpdateType.CREATE and transfer.responder == self.address:
            if committed.followed_by is not None:
                return  # its resolve went out with our countersignature
            if definition == "Withdraw":
                await self._countersign_reclaim(transfer)
                return
            await self._on_incoming(transfer)
        elif update.type is UpdateType.RESOLVE and transfer.initiator == self.address:
            if definition == "Withdraw":
                if transfer.balance.amount[0] > 0:  # the node refused: funds are back
                    self._settle_waiter(transfer.transfer_id, {"status": "cancelled"})
                return  # else the on-chain confirmation settles it
            paid = transfer.balance.amount[1] > 0
            self._settle_waiter(transfer.transfer_id,
                                {"status": "completed" if paid else "cancelled"})
        elif update.type is UpdateType.RESOLVE and transfer.responder == self.address:
            paid = transfer.balance.amount[1] > 0
            routing_id = _routing_id(transfer)
            if routing_id is not None and routing_id in self._link_secrets:
                self._link_secrets.pop(routing_id, None)
                waiter = self._link_waiters.get(routing_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result({"status": "completed" if paid else "cancelled"})

    async def _on_incoming(self, transfer: Transfer) -> None:
        if self._redeeming(transfer):
            await self._claim_link(transfer)  # never shown as an incoming transfer
            return
        encrypted = transfer.meta.get("encryptedPreimage")
        if not isinstance(encrypted, str):
            return  # "transfer.incoming" (or "stream.opened") was stored with the update
        if transfer.transfer_id in self._claiming:
            return
        self._claiming.add(transfer.transfer_id)
        try:
            await self._claim(transfer, encrypted)
        except errors.UnknownTransfer:
            pass  # claimed meanwhile
        finally:
            self._claiming.discard(transfer.transfer_id)

    def _claim_at_once(self, update: Update, applied: Applied) -> Update | None:
        """The resolve of a payment to us that we can open, built on its create: it goes to
        the node with our countersignature of the create (the engine's `follow_up`), so
        the payment takes no request of ours. Anything else (a link we redeem, a
        preimage that does not open the lock: cancelled) takes the usual way."""
        transfer = applied.transfer
        if (update.type is not UpdateType.CREATE or transfer is None
                or transfer.responder != self.address
                or self.definition_names.get(transfer.transfer_definition) != "Hashlock"
                or self._redeeming(transfer) or transfer.transfer_id in self._claiming):
            return None
        encrypted = transfer.meta.get("encryptedPreimage")
        if not isinstance(encrypted, str):
            return None
        try:
            preimage = ecies.decrypt(self.signer.private_key, parse_bytes(encrypted, "meta"))
            lock, _expiry = HASHLOCK.decode_state(transfer.initial_state)
        except Exception:
            return None
        if len(preimage) != 32 or lock_hash(preimage) != lock:
            return None
        return resolve_update(applied.state, self.address, transfer.transfer_id,
                              HASHLOCK.encode_resolver(preimage))

    async def _countersign_reclaim(self, transfer: Transfer) -> None:
        """The node takes back its own collateral: its balance, its address. We check the
        commitment is what the transfer says and sign it (it moves none of our funds).
        Also the recovery's duty for a reclaim left unanswered (the node was down)."""
        _sig, initiator, responder, commitment, nonce, fee = WITHDRAW.decode_state(
            transfer.initial_state)
        state = await self.channel()
        expected = withdraw_commitment_digest(
            state.network.chain_id, self.channel_address, self.node_address, transfer.asset_id,
            transfer.balance.amount[0] - fee, nonce,
        )
        if (initiator, responder) != (self.node_address, self.address) or expected != commitment:
            await self.cancel(transfer.transfer_id)
            return
        await self.resolve(transfer.transfer_id,
                           WITHDRAW.encode_resolver(self.signer.sign(commitment)))

    async def _claim(self, transfer: Transfer, encrypted: str) -> None:
        try:
            preimage = ecies.decrypt(self.signer.private_key, parse_bytes(encrypted, "meta"))
            lock, _expiry = HASHLOCK.decode_state(transfer.initial_state)
            if len(preimage) != 32 or lock_hash(preimage) != lock:
                raise ValueError("the preimage does not open the lock")
        except Exception as exc:
            log.warning("cannot open payment %s: %s", transfer.transfer_id.hex(), exc)
            await self.cancel(transfer.transfer_id)
            return
        await self.resolve(transfer.transfer_id, HASHLOCK.encode_resolver(preimage))

    async def _pending_channels(self) -> list[Address]:
        stored = await self.engine.channel(self.channel_address)
        return [] if stored is None or stored.pending_update is None else [self.channel_address]

    async def _active_list(self) -> list[Transfer]:
        return list((await self.active_transfers()).values())

    async def _look_after(self, transfer: Transfer) -> None:
        """The recovery's duty for a condition paying us (hashlock, oracle payment,
        stream): claim it if we can, keep it enforceable on chain while the node does not
        countersign (locks.py), cancel it once it expired and nobody can claim it."""
        resolver = self.resolver_we_hold(transfer)
        if resolver is not None:
            await locks.keep_enforceable(self, transfer, resolver)
        name = self.definition_names.get(transfer.transfer_definition)
        if not locks.enforceable(self, transfer):
            await self.cancel(transfer.transfer_id)
        elif name == "Stream":
            await self.streams.look_after(transfer)
        elif resolver is not None and name == "Signed":
            await self.resolve(transfer.transfer_id, resolver)  # our claim, once more
        elif isinstance(transfer.meta.get("encryptedPreimage"), str) or self._redeeming(transfer):
            await self._on_incoming(transfer)

    def _cancel_resolver(self, transfer: Transfer) -> bytes:
        return DEFINITIONS[self.definition_names[transfer.transfer_definition]].cancel_resolver

    def _redeeming(self, transfer: Transfer) -> bool:
        """A link forward to us whose secret we hold (we are redeeming that link)."""
        routing_id = _routing_id(transfer)
        return ("link" in transfer.meta and routing_id is not None
                and routing_id in self._link_secrets)


def _link_status(payment_status: str, *, locked: bool) -> str:
    """A link's status from its payment's: locked and unsettled is "open"."""
    if payment_status == outcomes.COMPLETED:
        return "claimed"
    if payment_status == outcomes.CANCELLED:
        return "cancelled"
    return "open" if locked else "pending"


def _routing_id(transfer: Transfer) -> bytes | None:
    return _routing_id_from(transfer.meta)


def _routing_id_from(meta: Any) -> bytes | None:
    value = meta.get("routingId")
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def _transfer_event(transfer: Transfer, amount: int | None = None) -> dict[str, Any]:
    """An event's description of a transfer; `amount` defaults to what it locks (a
    resolved one names what was paid, or refunded)."""
    meta = transfer.meta
    return {
        "transferId": hexb(transfer.transfer_id),
        "routingId": meta.get("routingId"),
        "assetId": transfer.asset_id,
        "amount": str(max(transfer.balance.amount) if amount is None else amount),
        "from": meta.get("sender", transfer.initiator),
        "to": meta.get("recipient", transfer.responder),
        **({"link": True} if "link" in meta else {}),
        **({"stream": True} if "stream" in meta else {}),
        **({"oracle": meta["oracle"]} if isinstance(meta.get("oracle"), str) else {}),
    }


async def _both(*loops: Awaitable[None]) -> None:
    """Run background loops together; cancelling this cancels all of them."""
    await asyncio.gather(*loops)
