"""Pay-per-chunk over HTTP on the local stack (`make start` running, then
`.venv/bin/python examples/pay_per_chunk.py`).

A seller serves a file in chunks from a plain Flask app, each chunk for a price; a buyer
downloads it with httpx, paying every chunk with one stream voucher (a single channel
update opened the stream). At the end the buyer closes the stream and both balances show
exactly chunks x price. `file_app` is the whole server side a platform adds to its app.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import urllib.request
from pathlib import Path

import httpx
from flask import Flask, abort, request
from werkzeug.serving import make_server

from connext.chain.contracts import Sender, connect
from connext.chain.deploy import load_deployment
from connext.client import Client
from connext.pay import ChunkBuyer, ChunkSeller
from connext.pay.seller import runner
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

CHAIN_URL = os.environ.get("CONNEXT_CHAIN_URL", "http://127.0.0.1:8545")
NATS_URL = os.environ.get("CONNEXT_NATS_URL", "nats://127.0.0.1:4222")
NODE_URL = os.environ.get("CONNEXT_NODE_URL", "http://127.0.0.1:8000")
DATA_DIR = Path(os.environ.get("CONNEXT_DATA_DIR", ".data"))
FUNDER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # anvil #2
ETHER = 10**18
PRICE = 10**13  # per chunk
CHUNK = 1024


def file_app(seller: ChunkSeller, data: bytes, chunk_size: int = CHUNK) -> Flask:
    """A Flask app selling `data` in chunks: GET /file/<k> -> chunk k, once paid."""
    app = Flask(__name__)
    chunks = (len(data) + chunk_size - 1) // chunk_size

    @app.get("/file")
    def index() -> dict[str, int]:
        return {"chunks": chunks, "chunkSize": chunk_size, "price": seller.price}

    @app.get("/file/<int:k>")
    def chunk(k: int) -> object:
        if not 0 <= k < chunks:
            abort(404)
        return seller.flask_response(request, data[k * chunk_size:(k + 1) * chunk_size],
                                     chunks=chunks)

    return app


async def download(buyer: ChunkBuyer, base_url: str) -> bytes:
    """Fetch every chunk of the file, paying as it goes."""
    info = (await buyer.http.get(f"{base_url}/file")).json()
    parts = [(await buyer.get(f"{base_url}/file/{k}")).content for k in range(info["chunks"])]
    return b"".join(parts)


async def main() -> None:
    w3 = connect(CHAIN_URL)
    deployment = load_deployment(DATA_DIR / "deployments.json", w3.eth.chain_id)
    assert deployment is not None, "run `make start` first"
    with urllib.request.urlopen(f"{NODE_URL}/config") as response:
        node_address = json.loads(response.read())["address"]
    funder = Sender(w3, FUNDER_KEY)
    workdir = Path(tempfile.mkdtemp(prefix="connext-chunks-"))

    async def user(name: str) -> Client:
        signer = Signer.random()
        funder.send_eth(signer.address, ETHER)
        client = await Client.connect(signer, node_address=node_address, nats_url=NATS_URL,
                                      chain_url=CHAIN_URL, deployment=deployment,
                                      database_url=f"sqlite:///{workdir / name}.sqlite")
        await client.setup()
        return client

    buyer_client = await user("buyer")
    await buyer_client.deposit(ETH, ETHER // 2)
    # the seller's client runs on a loop of its own (the web server calls it from threads)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    seller_client = asyncio.run_coroutine_threadsafe(user("seller"), loop).result()
    seller = ChunkSeller(seller_client, runner(loop), price=PRICE, asset_id=ETH)
    data = os.urandom(20 * CHUNK)
    server = make_server("127.0.0.1", 0, file_app(seller, data), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    async with httpx.AsyncClient() as http:
        buyer = ChunkBuyer(buyer_client, http)
        got = await download(buyer, base)
        await buyer.close()
    assert got == data
    print(json.dumps({"chunks": 20, "price": PRICE, "paid": buyer.paid,
                      "buyer": (await buyer_client.balances()).get(ETH, 0),
                      "seller": asyncio.run_coroutine_threadsafe(
                          seller_client.balances(), loop).result().get(ETH, 0)}, indent=2))
    server.shutdown()
    await buyer_client.close()
    asyncio.run_coroutine_threadsafe(seller_client.close(), loop).result()


if __name__ == "__main__":
    asyncio.run(main())
