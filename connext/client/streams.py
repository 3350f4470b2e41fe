"""Metered streams: a budget locked once, then each micropayment is one signed voucher.

The payer opens a stream to a recipient through the node (`Streams.open`): a Stream
transfer to the node locks the budget (one channel update), and the node locks the same
budget towards the recipient (one more). Each micropayment is then one voucher, the payer's
EIP-712 signature over the new cumulative amount for the stream (`Voucher(streamId,
amount)` in the Stream definition's domain; the stream id is the payment's routing id),
sent straight to the recipient over NATS, batched on the wire, and verified by the
recipient without any channel update: signed by the stream's payer, for a stream of ours,
above the last one, within the budget. The recipient keeps the highest durably before it
acknowledges. Closing (by either side) resolves the recipient's hop with the highest
voucher; the node resolves the payer's hop with the same voucher, so it is never exposed,
and the rest of the budget goes back to the payer. If the payer disappears, the recipient
still closes with its highest voucher (with the node, or on chain: `exit_channel` uses it).
A stream expires like any transfer: its recipient closes it before then.

Never accept a voucher before checking every one of those conditions, never acknowledge
one before it is stored.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coincurve import PublicKey

from ..protocol import errors
from ..protocol.encoding import address_bytes, voucher_digester
from ..protocol.identifiers import forward_transfer_id
from ..protocol.serialization import MalformedData, hexb, parse_bytes, parse_uint
from ..protocol.signing import address_bytes_of, recover_public_key, verifies
from ..protocol.transfers import STREAM
from ..protocol.types import Address, Transfer

if TYPE_CHECKING:
    from .client import Client, PaymentResult

log = logging.getLogger(__name__)

VOUCHERS_METHOD = "stream.vouchers"
CLOSE_METHOD = "stream.close"
DEFAULT_STREAM_TIMEOUT = 3600
MAX_BATCH = 512
"""Vouchers per message at most (each one still signed and checked on its own)."""
PIPELINE = 3
"""Batches of one stream on the wire at once."""
ARRIVAL_WAIT = 60.0
"""Seconds a payer keeps offering vouchers to a recipient that does not know the stream
yet: the node locks the recipient's hop after ours, once it has collateral there (a
deposit on chain may come first). Vouchers are cumulative, so offering one again is
harmless."""


@dataclass(frozen=True, slots=True)
class Voucher:
    """The payer's signature over a stream's cumulative amount."""

    stream_id: bytes
    amount: int
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {"streamId": hexb(self.stream_id), "amount": str(self.amount),
                "signature": hexb(self.signature)}


@dataclass
class OutgoingStream:
    """A stream we pay: sign vouchers with `pay` (sent to the recipient, batched) or
    `voucher` (for another carrier, e.g. HTTP), and `close` when done."""

    streams: Streams
    routing_id: bytes
    transfer_id: bytes
    recipient: Address
    asset_id: Address
    budget: int
    expiry: int
    paid: int = 0
    """The cumulative amount of the last voucher we signed (kept durably before a voucher
    leaves, so a restarted payer never signs below it)."""
    acknowledged: int = 0
    """The highest cumulative amount the recipient confirmed it stored (since this
    process resumed the stream)."""
    _queue: list[tuple[Voucher, asyncio.Future[int]]] = field(default_factory=list)
    _sending: asyncio.Task[None] | None = None
    _kept: int = field(init=False)
    """The highest amount stored durably (or resumed from the store)."""

    def __post_init__(self) -> None:
        self._kept = self.paid

    @property
    def stream_id(self) -> bytes:
        return self.routing_id

    @functools.cached_property
    def _digest(self) -> Callable[[int], bytes]:
        client = self.streams.client
        return voucher_digester(client.network.chain_id, client.definition_address["Stream"],
                                self.routing_id)

    def voucher(self, total: int) -> Voucher:
        """Sign the cumulative `total` (at most the budget, above the last one)."""
        if total > self.budget:
            raise errors.VoucherAboveBudget(
                f"the stream's budget is {self.budget}; a voucher of {total} is above it")
        if total <= self.paid:
            raise errors.VoucherNotIncreasing(
                f"the last voucher was {self.paid}; a voucher must be for more")
        self.paid = total
        return Voucher(self.routing_id, total,
                       self.streams.client.signer.sign(self._digest(total)))

    async def pay(self, amount: int) -> Voucher:
        """Pay `amount` more: one voucher for the new total, sent to the recipient; returns
        once the recipient stored it (or raises the recipient's typed refusal)."""
        if amount <= 0:
            raise errors.InvalidAmount("a micropayment must be positive")
        voucher = self.voucher(self.paid + amount)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((voucher, done))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send_all())
        await done
        return voucher

    async def _send_all(self) -> None:
        """Send what is queued, a batch per request, while vouchers keep coming, with up to
        `PIPELINE` batches on the wire: the recipient checks one while we sign the next.
        Batches leave in order and the recipient takes them in order (its per-stream
        lock is taken in arrival order)."""
        loop = asyncio.get_running_loop()
        in_flight: collections.deque[asyncio.Task[None]] = collections.deque()
        batch: list[tuple[Voucher, asyncio.Future[int]]] = []
        try:
            while self._queue or in_flight:
                # a full batch goes at once; a partial one only when nothing else of ours
                # is on the wire (no waiting when idle, full batches under load)
                while self._queue and len(in_flight) < PIPELINE and (
                        not in_flight or len(self._queue) >= MAX_BATCH):
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                    # durable before it leaves: after a restart we never sign below it
                    last = batch[-1][0]
                    await self.streams.client.store.run(
                        self.streams.client.store.save_voucher, self.routing_id,
                        last.amount, last.signature)
                    self._kept = max(self._kept, last.amount)
                    in_flight.append(loop.create_task(self._send_batch(batch)))
                    batch = []
                await in_flight.popleft()
        except BaseException as exc:
            # e.g. the store refused the write: the vouchers not sent fail (their payer
            # hears why) instead of waiting forever, and were never paid: the next
            # voucher builds on the last one kept; the ones on the wire finish
            failed, self._queue = batch + self._queue, []
            if failed and self.paid == failed[-1][0].amount:
                self.paid = self._kept
            for _voucher, done in failed:
                if done.done():
                    continue
                if isinstance(exc, Exception):
                    done.set_exception(exc)
                else:
                    done.cancel()
            raise

    async def _send_batch(self, batch: list[tuple[Voucher, asyncio.Future[int]]]) -> None:
        try:
            accepted = await self._deliver([v for v, _ in batch])
        except Exception as exc:
            for _voucher, done in batch:
                if not done.done():
                    done.set_exception(_typed(exc))
            return
        self.acknowledged = max(self.acknowledged, accepted)
        for voucher, done in batch:
            if not done.done():
                done.set_result(voucher.amount)

    async def _deliver(self, vouchers: list[Voucher]) -> int:
        """Send one batch; returns the highest amount the recipient stored."""
        from ..messaging import RemoteError

        client = self.streams.client
        deadline = time.monotonic() + ARRIVAL_WAIT
        pause = 0.05
        while True:
            try:
                reply = await client.messaging.request(
                    self.recipient, VOUCHERS_METHOD, {
                        "streamId": hexb(self.routing_id),
                        "vouchers": [[str(v.amount), hexb(v.signature)] for v in vouchers]},
                    timeout=client.request_timeout)
                return parse_uint(reply.get("accepted"), "accepted")
            except RemoteError as exc:
                if (exc.code == errors.VoucherNotIncreasing.code
                        and self.acknowledged >= vouchers[-1].amount):
                    return self.acknowledged  # a later batch of ours got there first
                # the recipient's hop may not be locked yet: offer the batch again a while
                if exc.code != "unknown_stream" or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def close(self) -> str:
        """Ask the recipient to settle the stream with our highest voucher (the rest of
        the budget comes back); returns the payment's status once our transfer is
        resolved ("completed", or "cancelled" if nothing was streamed)."""
        client = self.streams.client
        if self._sending is not None:
            await asyncio.shield(self._sending)
        await _request(client, self.recipient, CLOSE_METHOD, {"streamId": hexb(self.routing_id)})
        for _ in range(int(client.request_timeout * 10)):
            status = await client.payment_status(routing_id=self.routing_id)
            if status != "pending":
                return status
            await asyncio.sleep(0.1)
        return await client.payment_status(routing_id=self.routing_id)


class Streams:
    """The streams of one client, both the ones it pays and the ones paying it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.outgoing: dict[bytes, OutgoingStream] = {}
        self._highest: dict[bytes, tuple[int, bytes]] = {}
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._keys: dict[bytes, PublicKey] = {}
        self._digesters: dict[bytes, Callable[[int], bytes]] = {}
        """The payer's public key of each stream paying us, once a voucher showed it."""

    # --- paying ---------------------------------------------------------------------------

    async def open(self, recipient: Address, asset_id: Address, budget: int, *,
                   timeout: int = DEFAULT_STREAM_TIMEOUT,
                   payment_id: str | bytes | None = None) -> OutgoingStream:
        """Lock `budget` in a stream to `recipient` through the node; returns once our
        hop is locked in (the node forwards it to the recipient right after)."""
        client = self.client
        routing_id = client._routing_id(payment_id)
        expiry = int(time.time()) + timeout
        state = STREAM.encode_state(client.address, routing_id, expiry)
        result: PaymentResult = await client._send(
            recipient, asset_id, budget, "Stream", state, timeout, {"stream": True}, None,
            routing_id)
        stream = await self.resume(result.routing_id)
        if stream is None:  # the node has not answered yet: the stream is pending
            raise errors.StreamNotOpen("the node has not confirmed the stream yet; "
                                       f"routing id 0x{result.routing_id.hex()}")
        return stream

    async def resume(self, routing_id: bytes) -> OutgoingStream | None:
        """Our stream with this routing id as we left it (after a restart too), while it
        is locked in our channel (None once it settled or was refunded)."""
        client = self.client
        from .outcomes import transfer_id_of

        transfer_id = transfer_id_of(routing_id)
        transfer = (await client.active_transfers()).get(transfer_id)
        if transfer is None or transfer.initiator != client.address:
            self.outgoing.pop(routing_id, None)  # settled, refunded or never ours
            return None
        if routing_id in self.outgoing:
            return self.outgoing[routing_id]
        _signer, _stream_id, expiry = STREAM.decode_state(transfer.initial_state)
        saved = await client.store.run(client.store.voucher, routing_id)
        stream = OutgoingStream(self, routing_id, transfer_id,
                                str(transfer.meta.get("recipient")), transfer.asset_id,
                                transfer.balance.amount[0], int(expiry),
                                paid=0 if saved is None else saved[0])
        self.outgoing[routing_id] = stream
        return stream

    # --- being paid -----------------------------------------------------------------------

    async def handle_vouchers(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """The payer's vouchers for a stream to us: check every one, store the highest,
        acknowledge it."""
        stream_id = parse_bytes(body.get("streamId"), "streamId", 32)
        raw = body.get("vouchers")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH:
            raise MalformedData(f"vouchers: expected a list of 1 to {MAX_BATCH}")
        vouchers = []
        for index, item in enumerate(raw):
            if not isinstance(item, list) or len(item) != 2:
                raise MalformedData(f"vouchers[{index}]: expected [amount, signature]")
            vouchers.append(Voucher(stream_id, parse_uint(item[0], f"vouchers[{index}]"),
                                    parse_bytes(item[1], f"vouchers[{index}]", 65)))
        accepted = await self.accept(vouchers, payer=sender)
        return {"accepted": str(accepted)}

    async def accept(self, vouchers: list[Voucher], *, payer: Address | None = None) -> int:
        """Check vouchers for one stream paying us, in order, and store the highest before
        returning it; raises (storing nothing) at the first that is not valid:
        `UnknownStream` (no such stream pays us, or not from `payer`),
        `VoucherNotIncreasing`, `VoucherAboveBudget`, `InvalidSignature`."""
        stream_id = vouchers[0].stream_id
        if any(v.stream_id != stream_id for v in vouchers):
            raise errors.UnknownStream("a batch holds vouchers of one stream")
        lock = self._locks.setdefault(stream_id, asyncio.Lock())
        async with lock:
            transfer = await self._incoming(stream_id)
            signer, _stream, _expiry = STREAM.decode_state(transfer.initial_state)
            if payer is not None and payer != signer:
                raise errors.UnknownStream("this stream is not paid by the sender")
            budget = transfer.balance.amount[0]
            last, _signature = await self._last(stream_id)
            client = self.client
            digest_of = self._digesters.get(stream_id)
            if digest_of is None:
                digest_of = self._digesters[stream_id] = voucher_digester(
                    client.network.chain_id, client.definition_address["Stream"], stream_id)
            payer_bytes = address_bytes(signer)
            key = self._keys.get(stream_id)
            for voucher in vouchers:
                if voucher.amount <= last:
                    raise errors.VoucherNotIncreasing(
                        f"the last voucher was for {last}; {voucher.amount} is not more")
                if voucher.amount > budget:
                    raise errors.VoucherAboveBudget(
                        f"the stream's budget is {budget}; {voucher.amount} is above it")
                digest = digest_of(voucher.amount)
                # The one we keep (the last) is recovered as the chain will recover it;
                # the others are checked against the payer's key (half the cost): they
                # are superseded by it, so only its v byte has to be the right one.
                if key is None or voucher is vouchers[-1]:
                    key = self._payer_key(digest, voucher.signature, payer_bytes)
                elif not verifies(key, digest, voucher.signature):
                    raise errors.InvalidSignature("the voucher is not signed by the payer")
                last = voucher.amount
            assert key is not None  # the last voucher always sets it
            self._keys[stream_id] = key
            best = vouchers[-1]
            await client.store.run(client.store.save_voucher, stream_id, best.amount,
                                   best.signature)
            self._highest[stream_id] = (best.amount, best.signature)
        await client._tell("stream.voucher", {"streamId": hexb(stream_id),
                                              "amount": str(best.amount),
                                              "count": len(vouchers)})
        return best.amount

    @staticmethod
    def _payer_key(digest: bytes, signature: bytes, payer: bytes) -> PublicKey:
        try:
            key = recover_public_key(digest, signature)
        except errors.InvalidSignature:
            key = None
        if key is None or address_bytes_of(key) != payer:
            raise errors.InvalidSignature("the voucher is not signed by the payer")
        return key

    async def load(self) -> None:
        """At start: the highest vouchers of the streams paying us (what `resolver`, and
        so an exit on chain, settles them with)."""
        for transfer in (await self.client.active_transfers()).values():
            if (transfer.responder == self.client.address and self.client.definition_names
                    .get(transfer.transfer_definition) == "Stream"):
                await self._last(_stream_id(transfer))

    async def highest(self, stream_id: bytes) -> Voucher | None:
        amount, signature = await self._last(stream_id)
        return None if amount == 0 else Voucher(stream_id, amount, signature)

    def resolver(self, transfer: Transfer) -> bytes | None:
        """The highest voucher of a stream paying us, as a resolver (from memory only:
        `closing_resolver` reads the store)."""
        best = self._highest.get(_stream_id(transfer))
        return None if best is None else STREAM.encode_resolver(*best)

    async def close(self, stream_id: bytes) -> int:
        """Settle a stream paying us with its highest voucher (cancel it when there is
        none: the payer gets everything back); returns the amount we received."""
        transfer = await self._incoming(stream_id)
        best = await self.highest(stream_id)
        resolver = STREAM.cancel_resolver if best is None else STREAM.encode_resolver(
            best.amount, best.signature)
        await self.client.resolve(transfer.transfer_id, resolver)
        return 0 if best is None else min(best.amount, transfer.balance.amount[0])

    async def handle_close(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """The payer asks us to settle its stream (it is done paying)."""
        stream_id = parse_bytes(body.get("streamId"), "streamId", 32)
        transfer = await self._incoming(stream_id)
        signer, _stream, _expiry = STREAM.decode_state(transfer.initial_state)
        if sender != signer:
            raise errors.UnknownStream("only the stream's payer may ask to close it")
        return {"received": str(await self.close(stream_id))}

    async def look_after(self, transfer: Transfer) -> None:
        """The recovery's duty for a stream paying us: close it before it expires (the
        node needs the rest of the time to settle with the payer)."""
        _signer, stream_id, expiry = STREAM.decode_state(transfer.initial_state)
        if expiry != 0 and expiry - int(time.time()) <= self.client.reveal_margin:
            await self.close(stream_id)

    async def _incoming(self, stream_id: bytes) -> Transfer:
        transfer = (await self.client.active_transfers()).get(forward_transfer_id(stream_id))
        if (transfer is None or transfer.responder != self.client.address
                or self.client.definition_names.get(transfer.transfer_definition) != "Stream"):
            raise errors.UnknownStream("no open stream with this id pays us")
        return transfer

    async def _last(self, stream_id: bytes) -> tuple[int, bytes]:
        if stream_id not in self._highest:
            saved = await self.client.store.run(self.client.store.voucher, stream_id)
            if saved is not None:
                self._highest[stream_id] = saved
        return self._highest.get(stream_id, (0, b""))


def _stream_id(transfer: Transfer) -> bytes:
    _signer, stream_id, _expiry = STREAM.decode_state(transfer.initial_state)
    return bytes(stream_id)


async def _request(client: Client, to: Address, method: str, body: dict[str, Any]) -> Any:
    try:
        return await client.messaging.request(to, method, body, timeout=client.request_timeout)
    except Exception as exc:
        raise _typed(exc) from exc


def _typed(exc: BaseException) -> BaseException:
    """A remote refusal as its typed error (the remote error is the cause)."""
    from ..messaging import RemoteError

    if isinstance(exc, RemoteError):
        cls = errors.error_class(exc.code)
        if cls is not None:
            typed = cls(exc.message)
            typed.__cause__ = exc
            return typed
    return exc
