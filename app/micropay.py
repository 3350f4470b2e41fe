"""Streams and oracle payments for the wallet screens and the JSON API.

The SDK does the work (`Client.streams`, `Client.pay_on_oracle`, `claim_oracle_payment`);
this module keeps what a screen shows beside it: voucher counters per stream (the
payer's from its own streaming, the recipient's from the `stream.voucher` events), the
streaming a wallet runs in the background at a pace it chose, the streams that closed
while this server ran, and the demo oracle (`connext oracle`) a wallet may ask for a
receipt. Everything a counter shows that matters (amounts) comes from the client's store;
the counts are for display.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import urllib.request
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from connext.client import Client
from connext.client.streams import ARRIVAL_WAIT, MAX_BATCH, OutgoingStream
from connext.protocol import errors
from connext.protocol.serialization import hexb
from connext.protocol.transfers import SIGNED, STREAM
from connext.protocol.types import Address, Transfer

from .assets import Asset, InputError
from .wallets import Wallet, WalletService

log = logging.getLogger(__name__)
RECENT = 20
"""Closed streams a wallet's screen keeps showing (since this server started)."""
FIRST_ARRIVAL = 6.0
"""Seconds `pay_stream` waits for the recipient to store its first batch of vouchers."""


@dataclass
class Counter:
    vouchers: int = 0
    first_at: float = 0.0
    last_at: float = 0.0

    def add(self, count: int) -> None:
        now = time.monotonic()
        if self.vouchers == 0:
            self.first_at = now
        self.vouchers += count
        self.last_at = now

    @property
    def per_second(self) -> float:
        span = self.last_at - self.first_at
        return self.vouchers / span if span > 0.05 else 0.0


@dataclass(frozen=True)
class StreamRow:
    """One stream as a screen shows it."""

    stream_id: str
    outgoing: bool
    counterparty: str
    asset: Asset
    budget: int
    streamed: int
    vouchers: int
    per_second: float
    status: str
    """"open", "streaming" (we are paying it now), "completed" or "refunded"."""
    expiry: int = 0
    problem: BaseException | None = None
    """Why our last streaming stopped before it was done, if it did."""

    @property
    def left(self) -> int:
        return max(self.budget - self.streamed, 0)


@dataclass(frozen=True)
class OraclePayment:
    transfer_id: str
    outgoing: bool
    counterparty: str
    asset: Asset
    amount: int
    oracle: str
    payment_id: str
    expiry: int


@dataclass
class _Wallets:
    counters: dict[tuple[str, str], Counter] = field(default_factory=dict)
    streaming: dict[tuple[str, str], Future[None]] = field(default_factory=dict)
    closed: dict[str, list[StreamRow]] = field(default_factory=dict)
    problems: dict[tuple[str, str], BaseException] = field(default_factory=dict)
    receipts: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


class MicroPayments:
    def __init__(self, service: WalletService) -> None:
        self.service = service
        self._state = _Wallets()
        self._oracle_address: str | None = None
        service.listeners.append(self._on_event)

    # --- streams ------------------------------------------------------------------------

    def open_stream(self, wallet: Wallet, recipient: Address, asset: Asset, budget: int, *,
                    timeout: int = 3600, payment_id: str | None = None) -> StreamRow:
        if recipient == wallet.address:
            raise InputError("to", "That is your own address; you cannot stream to yourself.")

        async def open_() -> OutgoingStream:
            client = await self.service.client(wallet)
            balance = (await client.balances()).get(asset.address, 0)
            if budget > balance:
                raise InputError("budget", f"That is more than your balance "
                                           f"({asset.format(balance)} {asset.symbol}).")
            return await client.streams.open(recipient, asset.address, budget,
                                             timeout=timeout, payment_id=payment_id)

        stream = self.service.run(open_(), timeout=60)
        return self._row_out(wallet, stream)

    def start_streaming(self, wallet: Wallet, stream_id: bytes, each: int, count: int,
                        per_second: float = 0.0) -> None:
        """Pay `count` vouchers of `each` more into our stream in the background (as fast
        as the recipient acknowledges, or `per_second`), until done, stopped or the budget
        is spent."""
        key = (wallet.address, hexb(stream_id))
        running = self._state.streaming.get(key)
        if running is not None and not running.done():
            raise InputError("form", "This stream is already paying; stop it first.")

        async def stream_() -> OutgoingStream:
            client = await self.service.client(wallet)
            stream = await client.streams.resume(stream_id)
            if stream is None:
                raise errors.UnknownStream("this wallet pays no open stream with that id")
            if stream.budget - stream.paid < each:
                raise InputError("each", "What is left of the budget does not cover one "
                                         "voucher of that amount.")
            return stream

        stream = self.service.run(stream_())
        self._state.problems.pop(key, None)
        self._state.streaming[key] = asyncio.run_coroutine_threadsafe(
            self._pay(wallet, stream, each, count, per_second), self.service.loop)

    def pay_stream(self, wallet: Wallet, stream_id: bytes, each: int, count: int) -> StreamRow:
        """Pay `count` vouchers of `each` more into our stream now, and return the stream
        once the recipient stored them all (the JSON API's pay). Refused whole, before any
        voucher is signed, when the budget left does not cover them all."""
        sid = hexb(stream_id)

        async def pay() -> OutgoingStream:
            client = await self.service.client(wallet)
            stream = await client.streams.resume(stream_id)
            # the SDK keeps a stream it closed in memory: only a locked one takes vouchers
            if stream is None or stream.transfer_id not in await client.active_transfers():
                raise errors.UnknownStream("this wallet pays no open stream with that id")
            left = stream.budget - stream.paid
            if each * count > left:
                raise errors.VoucherAboveBudget(
                    f"{count} vouchers of {each} are {each * count} in all; the stream's "
                    f"budget has {left} left")
            counter = self._counter(wallet.address, sid)
            for start in range(0, count, MAX_BATCH):
                n = min(MAX_BATCH, count - start)
                batch = asyncio.gather(*(stream.pay(each) for _ in range(n)))
                try:
                    # a recipient that never got the stream is offered it for a minute
                    # (ARRIVAL_WAIT); a caller waiting on us is told much sooner
                    await asyncio.wait_for(batch, FIRST_ARRIVAL if start == 0 else None)
                except TimeoutError:
                    raise errors.StreamNotOpen(
                        "the recipient has not got this stream yet (the node forwards it "
                        "once it can fund it); the vouchers sent may still arrive, so read "
                        "the stream before paying again") from None
                counter.add(n)
            return stream

        if self.is_streaming(wallet, sid):
            raise InputError("form", "This stream is already paying in the background; stop "
                                     "it first.")
        stream = self.service.run(pay(), timeout=ARRIVAL_WAIT + 60)
        return self._row_out(wallet, stream)

    def stop_streaming(self, wallet: Wallet, stream_id: bytes) -> bool:
        future = self._state.streaming.pop((wallet.address, hexb(stream_id)), None)
        if future is None or future.done():
            return False
        future.cancel()
        return True

    def is_streaming(self, wallet: Wallet, stream_id: str) -> bool:
        future = self._state.streaming.get((wallet.address, stream_id))
        return future is not None and not future.done()

    async def _pay(self, wallet: Wallet, stream: OutgoingStream, each: int, count: int,
                   per_second: float) -> None:
        counter = self._counter(wallet.address, hexb(stream.stream_id))
        remaining = count
        batch = MAX_BATCH if per_second <= 0 else max(1, min(MAX_BATCH, int(per_second / 10)))
        pause = 0.0 if per_second <= 0 else batch / per_second
        try:
            while remaining > 0:
                n = min(remaining, batch, (stream.budget - stream.paid) // each)
                if n <= 0:
                    break
                await asyncio.gather(*(stream.pay(each) for _ in range(n)))
                counter.add(n)
                remaining -= n
                if pause:
                    await asyncio.sleep(pause)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("streaming stopped: %s", exc)
            self._state.problems[(wallet.address, hexb(stream.stream_id))] = exc

    def close_stream(self, wallet: Wallet, stream_id: bytes) -> str:
        """Close a stream of ours, either side: returns "completed" or "refunded"."""
        self.stop_streaming(wallet, stream_id)

        async def close() -> str:
            client = await self.service.client(wallet)
            stream = await client.streams.resume(stream_id)
            if stream is not None:
                status = await stream.close()
                return "refunded" if status == "cancelled" else status
            received = await client.streams.close(stream_id)
            return "completed" if received > 0 else "refunded"

        return self.service.run(close(), timeout=60)

    def streams(self, wallet: Wallet) -> list[StreamRow]:
        """The wallet's open streams (both ways), then the ones that closed lately."""

        async def read() -> list[StreamRow]:
            client = await self.service.client(wallet)
            rows = []
            for transfer in (await client.active_transfers()).values():
                if client.definition_names.get(transfer.transfer_definition) != "Stream":
                    continue
                if transfer.initiator == client.address:
                    stream = await client.streams.resume(_routing_id(transfer))
                    if stream is not None:
                        rows.append(self._row_out(wallet, stream))
                elif transfer.responder == client.address:
                    rows.append(await self._row_in(wallet, client, transfer))
            return rows

        open_rows = self.service.run(read())
        seen = {r.stream_id for r in open_rows}
        recent = [r for r in self._state.closed.get(wallet.address, [])
                  if r.stream_id not in seen]
        return open_rows + recent

    def _row_out(self, wallet: Wallet, stream: OutgoingStream) -> StreamRow:
        sid = hexb(stream.stream_id)
        counter = self._counter(wallet.address, sid)
        return StreamRow(sid, True, stream.recipient, self.service.asset(stream.asset_id),
                         stream.budget, stream.paid, counter.vouchers, counter.per_second,
                         "streaming" if self.is_streaming(wallet, sid) else "open",
                         stream.expiry, self._state.problems.get((wallet.address, sid)))

    async def _row_in(self, wallet: Wallet, client: Client, transfer: Transfer) -> StreamRow:
        _signer, stream_id, expiry = STREAM.decode_state(transfer.initial_state)
        sid = hexb(stream_id)
        best = await client.streams.highest(bytes(stream_id))
        counter = self._counter(wallet.address, sid)
        return StreamRow(sid, False, str(transfer.meta.get("sender", transfer.initiator)),
                         self.service.asset(transfer.asset_id), transfer.balance.amount[0],
                         0 if best is None else best.amount, counter.vouchers,
                         counter.per_second, "open", int(expiry))

    def _counter(self, address: str, stream_id: str) -> Counter:
        return self._state.counters.setdefault((address, stream_id), Counter())

    def _on_event(self, address: str, kind: str, data: dict[str, Any]) -> None:
        """Called on the wallets' loop for every client event."""
        if kind == "stream.voucher":
            self._counter(address, str(data.get("streamId"))).add(int(data.get("count", 1)))
        elif kind in ("transfer.completed", "transfer.cancelled", "transfer.received") \
                and data.get("stream"):
            self._closed(address, kind, data)

    def _closed(self, address: str, kind: str, data: dict[str, Any]) -> None:
        sid = str(data.get("routingId"))
        outgoing = kind != "transfer.received"
        counter = self._state.counters.get((address, sid), Counter())
        try:
            asset = self.service.asset(str(data.get("assetId")))
        except InputError:
            return
        paid = 0 if kind == "transfer.cancelled" else int(data.get("amount", 0))
        row = StreamRow(sid, outgoing, str(data.get("to" if outgoing else "from")), asset,
                        0, paid, counter.vouchers, counter.per_second,
                        "refunded" if kind == "transfer.cancelled" else "completed")
        rows = [r for r in self._state.closed.get(address, []) if r.stream_id != sid]
        self._state.closed[address] = [row, *rows][:RECENT]

    # --- oracle payments -------------------------------------------------------------------

    def pay_on_oracle(self, wallet: Wallet, recipient: Address, asset: Asset, amount: int,
                      oracle: Address, oracle_payment_id: bytes, *, timeout: int = 3600,
                      payment_id: str | None = None) -> Any:
        if recipient == wallet.address:
            raise InputError("to", "That is your own address; you cannot pay yourself.")

        async def pay() -> Any:
            client = await self.service.client(wallet)
            balance = (await client.balances()).get(asset.address, 0)
            if amount > balance:
                raise InputError("amount", f"That is more than your balance "
                                           f"({asset.format(balance)} {asset.symbol}).")
            return await client.pay_on_oracle(recipient, asset.address, amount, oracle=oracle,
                                              oracle_payment_id=oracle_payment_id,
                                              timeout=timeout, wait=None,
                                              payment_id=payment_id)

        return self.service.run(pay(), timeout=60)

    def oracle_payments(self, wallet: Wallet) -> list[OraclePayment]:
        async def read() -> list[OraclePayment]:
            client = await self.service.client(wallet)
            rows = []
            for transfer in (await client.active_transfers()).values():
                if client.definition_names.get(transfer.transfer_definition) != "Signed":
                    continue
                oracle, payment_id, expiry = SIGNED.decode_state(transfer.initial_state)
                outgoing = transfer.initiator == client.address
                counterparty = transfer.meta.get("recipient" if outgoing else "sender",
                                                 transfer.responder if outgoing
                                                 else transfer.initiator)
                rows.append(OraclePayment(
                    hexb(transfer.transfer_id), outgoing, str(counterparty),
                    self.service.asset(transfer.asset_id), transfer.balance.amount[0],
                    to_checksum_address(oracle), hexb(payment_id), int(expiry)))
            return rows

        return self.service.run(read())

    def claim_oracle_payment(self, wallet: Wallet, transfer_id: bytes, data: bytes,
                             signature: bytes) -> int:
        """Claim with the oracle's receipt; returns the amount received."""

        async def claim() -> int:
            client = await self.service.client(wallet)
            transfer = (await client.active_transfers()).get(transfer_id)
            before = (await client.balances()).get(transfer.asset_id, 0) if transfer else 0
            await client.claim_oracle_payment(transfer_id, data, signature)
            assert transfer is not None
            return (await client.balances()).get(transfer.asset_id, 0) - before

        return self.service.run(claim(), timeout=60)

    def demo_oracle(self) -> str | None:
        """The address of the configured demo oracle, if there is one and it answers."""
        url = self.service.config.oracle_url
        if not url:
            return None
        if self._oracle_address is None:
            try:
                with urllib.request.urlopen(f"{url}/", timeout=5) as response:
                    self._oracle_address = to_checksum_address(
                        json.loads(response.read())["address"])
            except (OSError, ValueError, KeyError):
                return None
        return self._oracle_address

    def keep_receipt(self, wallet: Wallet, transfer_id: str, outcome: str,
                     signature: str) -> None:
        """Remember a receipt the demo oracle gave for a payment to `wallet` (in memory),
        so every rendering of its card shows it until it is claimed."""
        self._state.receipts[(wallet.address, transfer_id)] = (outcome, signature)

    def receipt(self, wallet: Wallet, transfer_id: str) -> tuple[str, str] | None:
        return self._state.receipts.get((wallet.address, transfer_id))

    def forget_receipt(self, wallet: Wallet, transfer_id: str) -> None:
        self._state.receipts.pop((wallet.address, transfer_id), None)

    def ask_demo_oracle(self, payment_id: bytes, data: bytes) -> bytes:
        """The demo oracle's receipt over (payment id, data)."""
        url = self.service.config.oracle_url
        if not url or self.demo_oracle() is None:
            raise InputError("form", "No demo oracle answers here; paste the oracle's "
                                     "receipt instead.")
        body = json.dumps({"paymentId": hexb(payment_id), "data": hexb(data)}).encode()
        request = urllib.request.Request(f"{url}/receipts", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
        except OSError:
            raise InputError("form", "The demo oracle did not answer; try again in a "
                                     "moment.") from None
        return bytes.fromhex(str(answer["signature"])[2:])


def new_oracle_payment_id() -> str:
    return "0x" + secrets.token_hex(32)


def bytes32_of(text: str, field_name: str) -> bytes:
    """0x and 64 hex digits, or a short text (at most 32 bytes of UTF-8, zero-padded)."""
    raw = text.strip()
    if not raw:
        raise InputError(field_name, "Enter a value (0x and 64 hex digits, or a short text).")
    if raw.lower().startswith("0x") and len(raw) == 66:
        try:
            return bytes.fromhex(raw[2:])
        except ValueError:
            pass
    encoded = raw.encode()
    if len(encoded) > 32:
        raise InputError(field_name, "That text is too long: at most 32 bytes (or give 0x "
                                     "and 64 hex digits).")
    return encoded.ljust(32, b"\0")


def text_of(value: bytes) -> str:
    """bytes32 as the text it was typed as, when it is one; else hex."""
    stripped = value.rstrip(b"\0")
    try:
        text = stripped.decode()
    except UnicodeDecodeError:
        return hexb(value)
    return text if text.isprintable() and text else hexb(value)


def _routing_id(transfer: Transfer) -> bytes:
    _signer, stream_id, _expiry = STREAM.decode_state(transfer.initial_state)
    return bytes(stream_id)
