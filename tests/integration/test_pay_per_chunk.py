"""Pay-per-chunk over real HTTP: a Flask server (examples/pay_per_chunk.py) sells a file in
chunks, an httpx client downloads it paying each chunk with a stream voucher; the seller's
balance rises by exactly chunks x price; a request without a voucher, or with a bad one,
gets 402 and no data."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server
from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER

from connext.client import Client
from connext.pay import SCHEME, ChunkBuyer, ChunkSeller
from connext.pay.seller import runner
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from pay_per_chunk import download, file_app

PRICE = 10**13
CHUNK = 512
CHUNKS = 30


@pytest.fixture
def seller_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The seller's client lives on a loop of its own: the web server calls into it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_file_bought_chunk_by_chunk_pays_exactly_chunks_times_price(
    clients: ClientFactory, node: NodeProcess, seller_loop: asyncio.AbstractEventLoop,
) -> None:
    on_seller = runner(seller_loop)
    seller_client: Client = on_seller(_connected(clients))
    seller = ChunkSeller(seller_client, on_seller, price=PRICE, asset_id=ETH)
    data = os.urandom(CHUNKS * CHUNK - 100)
    server = make_server("127.0.0.1", 0, file_app(seller, data, CHUNK), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    async def scenario() -> None:
        buyer_client = await _connected(clients)
        await buyer_client.deposit(ETH, ETHER)
        async with httpx.AsyncClient(timeout=30) as http:
            # no voucher: 402 with the terms, and no data
            refused = await http.get(f"{base}/file/0")
            assert refused.status_code == 402 and refused.json()["code"] == "payment_required"
            terms = json.loads(base64.b64decode(refused.headers[PAYMENT_REQUIRED_HEADER]))
            (offer,) = terms["accepts"]
            assert (offer["scheme"], offer["amount"], offer["payTo"], offer["network"]) == (
                SCHEME, str(PRICE), seller_client.address, "eip155:31337")
            # a voucher that is not one, or not ours: 402 and no data
            for bad in (_payment(offer, {"streamId": "0x" + "00" * 32, "amount": "1",
                                         "signature": "0x" + "11" * 65}), "not base64!"):
                answer = await http.get(f"{base}/file/0", headers={PAYMENT_SIGNATURE_HEADER: bad})
                assert answer.status_code == 402 and answer.content.startswith(b"{")

            buyer = ChunkBuyer(buyer_client, http)
            got = await download(buyer, base)
            assert got == data
            assert buyer.paid == CHUNKS * PRICE
            # a voucher that does not cover one more chunk (the last one again): 402
            stream = next(iter(buyer.streams.values()))
            again = _payment(offer, {"streamId": "0x" + stream.routing_id.hex(),
                                     "amount": str(stream.paid),
                                     "signature": "0x" + "00" * 65})
            answer = await http.get(f"{base}/file/0", headers={PAYMENT_SIGNATURE_HEADER: again})
            assert answer.status_code == 402
            await buyer.close()
        assert await buyer_client.balances() == {ETH: ETHER - CHUNKS * PRICE}
        assert on_seller(seller_client.balances()) == {ETH: CHUNKS * PRICE}
        await buyer_client.close()

    try:
        asyncio.run(scenario())
    finally:
        server.shutdown()
        on_seller(seller_client.close())


async def _connected(clients: ClientFactory) -> Client:
    client = await clients.connect()
    await client.setup()
    return client


def _payment(offer: dict[str, Any], payload: dict[str, str]) -> str:
    body = {"x402Version": 2, "accepted": offer, "payload": payload}
    return base64.b64encode(json.dumps(body).encode()).decode()
