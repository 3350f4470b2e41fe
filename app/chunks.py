"""The demo's pay-per-chunk scene: one demo wallet sells a file, the other buys it by the chunk.

The shop serves its file over real HTTP from this app (`/demo/shop/<address>/file/<k>`,
`connext.pay.ChunkSeller`: 402 and the terms until a voucher pays the chunk); the buyer
downloads it with `connext.pay.ChunkBuyer` over httpx from the wallets' loop, opening one
stream, paying each chunk with one voucher and closing the stream at the end. The scene
counts what both sides saw (chunks, amount, vouchers per second), the settlement (each
wallet's balance before and after), and what the same payments would have cost on chain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from connext.chain.contracts import connect
from connext.pay import ChunkBuyer, ChunkSeller
from connext.protocol.types import ETH

from .wallets import Wallet, WalletService

log = logging.getLogger(__name__)
CHUNK_SIZE = 1024
CHUNKS = 64
PRICE = 10**14
"""0.0001 ETH a chunk."""
TRANSFER_GAS = 21_000
"""Gas of one plain ETH transfer: the cheapest way to pay on chain."""


@dataclass
class Scene:
    """One download, as both panels show it."""

    buyer: str
    shop: str
    chunks: int = CHUNKS
    price: int = PRICE
    downloaded: int = 0
    paid: int = 0
    sold: int = 0
    received: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    status: str = "downloading"
    """"downloading", "settling", "settled" or "failed"."""
    error: str = ""
    buyer_change: int | None = None
    shop_change: int | None = None
    gas_price: int = 0

    @property
    def per_second(self) -> float:
        end = self.finished_at or time.monotonic()
        span = end - self.started_at
        return self.downloaded / span if span > 0 else 0.0

    @property
    def onchain_gas(self) -> int:
        return self.chunks * TRANSFER_GAS

    @property
    def onchain_cost(self) -> int:
        return self.onchain_gas * self.gas_price

    @property
    def running(self) -> bool:
        return self.status in ("downloading", "settling")


class ChunkShop:
    def __init__(self, service: WalletService) -> None:
        self.service = service
        self.shops: dict[str, Wallet] = {}
        self.files: dict[str, bytes] = {}
        self.sellers: dict[str, ChunkSeller] = {}
        self.scenes: dict[str, Scene] = {}
        """The latest download per shop."""
        self._lock = threading.Lock()

    def open_shop(self, wallet: Wallet) -> None:
        with self._lock:
            self.shops[wallet.address] = wallet
            self.files.setdefault(wallet.address, os.urandom(CHUNKS * CHUNK_SIZE))

    def info(self, address: str) -> dict[str, Any] | None:
        if address not in self.shops:
            return None
        return {"chunks": CHUNKS, "chunkSize": CHUNK_SIZE, "price": str(PRICE),
                "assetId": ETH}

    def seller(self, address: str) -> ChunkSeller | None:
        wallet = self.shops.get(address)
        if wallet is None:
            return None
        seller = self.sellers.get(address)
        if seller is None:
            client = self.service.run(self.service.client(wallet))
            seller = ChunkSeller(client, self.service.run, price=PRICE, asset_id=ETH)
            self.sellers[address] = seller
        return seller

    def chunk(self, address: str, k: int) -> bytes | None:
        data = self.files.get(address)
        if data is None or not 0 <= k < CHUNKS:
            return None
        return data[k * CHUNK_SIZE:(k + 1) * CHUNK_SIZE]

    def sold(self, address: str, total: int) -> None:
        """The shop served one paid chunk; the stream's total is now `total`."""
        scene = self.scenes.get(address)
        if scene is not None and scene.running:
            scene.sold += 1
            scene.received = total

    def start(self, buyer: Wallet, shop: Wallet, base_url: str) -> Scene:
        current = self.scenes.get(shop.address)
        if current is not None and current.running:
            return current
        self.open_shop(shop)
        scene = Scene(buyer.address, shop.address)
        scene.gas_price = int(connect(self.service.config.chain_url).eth.gas_price)
        self.scenes[shop.address] = scene
        self.service.spawn(self._download(scene, buyer, shop, base_url))
        return scene

    async def _download(self, scene: Scene, buyer: Wallet, shop: Wallet,
                        base_url: str) -> None:
        service = self.service
        try:
            buyer_client = await service.client(buyer)
            shop_client = await service.client(shop)
            buyer_before = (await buyer_client.balances()).get(ETH, 0)
            shop_before = (await shop_client.balances()).get(ETH, 0)
            url = f"{base_url}/demo/shop/{shop.address}/file"
            async with httpx.AsyncClient(timeout=30) as http:
                chunk_buyer = ChunkBuyer(buyer_client, http, budget=CHUNKS * PRICE)
                for k in range(CHUNKS):
                    response = await chunk_buyer.get(f"{url}/{k}")
                    if response.status_code != 200:
                        raise RuntimeError(f"chunk {k}: HTTP {response.status_code}")
                    scene.downloaded += 1
                    scene.paid = chunk_buyer.paid
                scene.finished_at = time.monotonic()
                scene.status = "settling"
                await chunk_buyer.close()
            scene.buyer_change = (await buyer_client.balances()).get(ETH, 0) - buyer_before
            for _ in range(100):  # the shop's hop settles first; ours right after
                scene.shop_change = (await shop_client.balances()).get(ETH, 0) - shop_before
                if scene.shop_change == scene.received:
                    break
                await asyncio.sleep(0.05)
            scene.status = "settled"
        except Exception as exc:
            log.exception("the pay-per-chunk demo failed")
            from .views.common import explain

            scene.error = explain(exc)
            scene.status = "failed"
            scene.finished_at = scene.finished_at or time.monotonic()
