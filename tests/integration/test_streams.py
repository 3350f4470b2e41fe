"""Metered streams through a real node: a budget locked once, then a thousand vouchers and
no channel update until the stream is closed; settlement is the highest voucher on both
hops, to the wei; every invalid voucher is refused; a payer that disappears cannot keep
the recipient from its money (with the node, or on chain); an expired stream is refunded."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import nats
import pytest

from connext.client import Client
from connext.client.streams import VOUCHERS_METHOD, Voucher
from connext.messaging import envelope as env
from connext.messaging.natsauth import login_options
from connext.messaging.transport import subject
from connext.protocol import errors
from connext.protocol.encoding import voucher_digest
from connext.protocol.identifiers import forward_transfer_id
from connext.protocol.serialization import hexb
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

BUDGET = ETHER // 10
PRICE = 10**12  # a micropayment


async def _pair(clients: ClientFactory) -> tuple[Client, Client]:
    payer, payee = await clients.connect(), await clients.connect()
    await payer.setup()
    await payee.setup()
    await payer.deposit(ETH, ETHER)
    return payer, payee


async def _stream_arrived(payee: Client, routing_id: bytes) -> bool:
    return forward_transfer_id(routing_id) in await payee.active_transfers()


def test_a_thousand_vouchers_then_close_settle_the_highest_on_both_hops(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await _pair(clients)
        seen: list[dict[str, Any]] = []
        payee.on("stream.voucher", seen.append)
        stream = await payer.streams.open(payee.address, ETH, BUDGET)
        await eventually(lambda: _stream_arrived(payee, stream.routing_id))
        nonce_before = (await payer.channel()).nonce, (await payee.channel()).nonce

        await asyncio.gather(*(stream.pay(PRICE) for _ in range(1000)))
        assert stream.paid == stream.acknowledged == 1000 * PRICE
        assert sum(int(e["count"]) for e in seen) == 1000
        assert len(seen) < 1000  # batched on the wire, each one signed and checked
        # not one channel update for all of that
        assert ((await payer.channel()).nonce, (await payee.channel()).nonce) == nonce_before
        best = await payee.streams.highest(stream.routing_id)
        assert best is not None and best.amount == 1000 * PRICE

        assert await stream.close() == "completed"
        assert await payee.balances() == {ETH: 1000 * PRICE}
        assert await payer.balances() == {ETH: ETHER - 1000 * PRICE}  # the rest came back
        assert await payer.active_transfers() == {} and await payee.active_transfers() == {}
        for client in (payer, payee):  # the node commits its side right after ours
            await eventually(lambda c=client: node.channel(c.channel_address)
                             ["activeTransfers"] == [])
        assert int(node.channel(payer.channel_address)["state"]["balances"][0][0]) == \
            1000 * PRICE  # the node got from the payer exactly what it paid the payee
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


def test_every_invalid_voucher_is_refused_and_changes_nothing(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await _pair(clients)
        stream = await payer.streams.open(payee.address, ETH, BUDGET)
        other = await payer.streams.open(payee.address, ETH, BUDGET)
        await eventually(lambda: _stream_arrived(payee, other.routing_id))
        await stream.pay(5 * PRICE)
        chain, definition = payer.network.chain_id, payer.definition_address["Stream"]

        def signed(by: Signer, stream_id: bytes, amount: int) -> Voucher:
            digest = voucher_digest(chain, definition, stream_id, amount)
            return Voucher(stream_id, amount, by.sign(digest))

        cases = {
            "above the budget": (signed(payer.signer, stream.routing_id, BUDGET + 1),
                                 errors.VoucherAboveBudget),
            "not above the last": (signed(payer.signer, stream.routing_id, 5 * PRICE),
                                   errors.VoucherNotIncreasing),
            "lower than the last": (signed(payer.signer, stream.routing_id, 4 * PRICE),
                                    errors.VoucherNotIncreasing),
            "signed by someone else": (signed(Signer.random(), stream.routing_id, 6 * PRICE),
                                       errors.InvalidSignature),
            # the payer's real voucher for its other stream, presented for this one
            "for another stream": (Voucher(stream.routing_id, 6 * PRICE, signed(
                payer.signer, other.routing_id, 6 * PRICE).signature), errors.InvalidSignature),
            "of no stream paying us": (signed(payer.signer, os.urandom(32), 6 * PRICE),
                                       errors.UnknownStream),
        }
        for name, (voucher, refusal) in cases.items():
            with pytest.raises(errors.ProtocolError) as refused:  # the payee's typed reply
                await payer.messaging.request(payee.address, VOUCHERS_METHOD, {
                    "streamId": hexb(voucher.stream_id),
                    "vouchers": [[str(voucher.amount), hexb(voucher.signature)]]})
            assert refused.value.code == refusal.code, name
            best = await payee.streams.highest(stream.routing_id)
            assert best is not None and best.amount == 5 * PRICE, name

        # in a batch, the vouchers before the last are checked against the payer's key
        # (the last, the one kept, is recovered): a bad one anywhere refuses the batch
        batches = {
            "an earlier one signed by someone else": [
                signed(Signer.random(), stream.routing_id, 6 * PRICE),
                signed(payer.signer, stream.routing_id, 7 * PRICE)],
            "an earlier one for another stream": [
                Voucher(stream.routing_id, 6 * PRICE,
                        signed(payer.signer, other.routing_id, 6 * PRICE).signature),
                signed(payer.signer, stream.routing_id, 7 * PRICE)],
            "an earlier one for another amount": [
                Voucher(stream.routing_id, 6 * PRICE,
                        signed(payer.signer, stream.routing_id, 8 * PRICE).signature),
                signed(payer.signer, stream.routing_id, 7 * PRICE)],
            "the last signed by someone else": [
                signed(payer.signer, stream.routing_id, 6 * PRICE),
                signed(Signer.random(), stream.routing_id, 7 * PRICE)],
        }
        for name, batch in batches.items():
            with pytest.raises(errors.ProtocolError) as refused:
                await payer.messaging.request(payee.address, VOUCHERS_METHOD, {
                    "streamId": hexb(stream.routing_id),
                    "vouchers": [[str(v.amount), hexb(v.signature)] for v in batch]})
            assert refused.value.code == errors.InvalidSignature.code, name
            best = await payee.streams.highest(stream.routing_id)
            assert best is not None and best.amount == 5 * PRICE, name

        # a message replayed word for word is refused by the messaging layer
        raw = await nats.connect(clients.nats.url, **login_options(payer.signer))
        good = signed(payer.signer, stream.routing_id, 7 * PRICE)
        wire = env.encode(env.seal(payer.signer, payee.address, VOUCHERS_METHOD, {
            "streamId": hexb(good.stream_id), "vouchers": [[str(good.amount),
                                                            hexb(good.signature)]]},
            message_id=os.urandom(16), timestamp=int(time.time() * 1000)))
        to = subject(payee.address, payer.address, VOUCHERS_METHOD)
        first = env.decode((await raw.request(to, wire, timeout=10)).data, 10**6)
        assert first.body["result"]["accepted"] == str(7 * PRICE)
        again = env.decode((await raw.request(to, wire, timeout=10)).data, 10**6)
        assert again.body["error"]["code"] == "replayed_message"
        await raw.close()
        best = await payee.streams.highest(stream.routing_id)
        assert best is not None and best.amount == 7 * PRICE
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


def test_a_payer_that_disappears_cannot_keep_the_recipient_from_its_highest_voucher(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await _pair(clients)
        stream = await payer.streams.open(payee.address, ETH, BUDGET)
        await eventually(lambda: _stream_arrived(payee, stream.routing_id))
        for _ in range(40):
            await stream.pay(PRICE)
        await payer.close()  # gone without closing the stream

        assert await payee.streams.close(stream.routing_id) == 40 * PRICE
        assert await payee.balances() == {ETH: 40 * PRICE}
        # the node collects from the payer with the same voucher when it comes back
        back = await clients.connect(payer.signer, payer.database_url)
        await eventually(lambda: _settled(back), timeout=30)
        assert await back.balances() == {ETH: ETHER - 40 * PRICE}
        await back.close()
        await payee.close()

    asyncio.run(scenario())


def test_a_stream_that_expires_is_refunded(clients: ClientFactory, node: NodeProcess) -> None:
    async def scenario() -> None:
        payer, payee = await _pair(clients)
        payee.reveal_margin = 2  # it closes a stream paying it this long before the expiry
        stream = await payer.streams.open(payee.address, ETH, BUDGET, timeout=12)
        await eventually(lambda: _stream_arrived(payee, stream.routing_id))
        # nobody pays or closes: the recipient closes it before it expires, and the payer
        # gets its whole budget back
        await eventually(lambda: _settled(payer), timeout=40)
        assert await payer.balances() == {ETH: ETHER}
        assert await payee.balances() == {ETH: 0}
        assert await payer.payment_status(routing_id=stream.routing_id) == "cancelled"
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


async def _settled(client: Client) -> bool:
    return not await client.active_transfers()


def test_a_voucher_the_payer_cannot_store_fails_its_payment_instead_of_hanging(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    """A voucher is stored before it leaves (after a restart the payer never signs below
    it). When that write fails (a full disk), the vouchers waiting with it fail with the
    store's error, nothing of them reaches the recipient, and streaming goes on after."""
    async def scenario() -> None:
        payer, payee = await _pair(clients)
        stream = await payer.streams.open(payee.address, ETH, BUDGET)
        await eventually(lambda: _stream_arrived(payee, stream.routing_id))
        await stream.pay(PRICE)
        real = payer.store.save_voucher

        def save_voucher(*args: Any) -> None:  # the name decides how the store runs it
            raise OSError("No space left on device")

        payer.store.save_voucher = save_voucher  # type: ignore[method-assign]
        results = await asyncio.wait_for(asyncio.gather(
            *(stream.pay(PRICE) for _ in range(5)), return_exceptions=True), 30)
        assert [type(r) for r in results] == [OSError] * 5
        best = await payee.streams.highest(stream.stream_id)
        assert best is not None and best.amount == PRICE

        assert stream.paid == PRICE  # the failed ones were never paid

        payer.store.save_voucher = real  # type: ignore[method-assign]
        await stream.pay(PRICE)
        best = await payee.streams.highest(stream.stream_id)
        assert best is not None and best.amount == 2 * PRICE
        await payer.close()
        await payee.close()

    asyncio.run(scenario())
