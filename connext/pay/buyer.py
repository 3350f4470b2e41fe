"""The buyer's side of pay-per-chunk: download, and pay each chunk with one stream voucher.

`ChunkBuyer.get(url)` sends the request; on `402 Payment Required` with our scheme's terms
it opens (once per seller and asset) a stream to the seller through the node, signs a
voucher for one more chunk and sends the request again with it. `close()` asks every
seller to settle its stream (the unspent budget comes back). It pays only sellers of its
own node and network, and never more than the terms' price per chunk.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.schemas import PaymentPayload, PaymentRequirements

from ..client import Client
from ..client.streams import OutgoingStream
from ..protocol import errors
from .seller import SCHEME

STREAM_OPEN_WAIT = 10.0
"""Seconds a just-opened stream may take to reach the seller (the node forwards it)."""


class PaymentRefused(Exception):
    """The seller would not take our payment (its 402 after our voucher says why)."""


class ChunkBuyer:
    def __init__(self, client: Client, http: httpx.AsyncClient, *,
                 budget: int | None = None, stream_timeout: int = 3600) -> None:
        """`budget`: what to lock per stream (default: the terms' price times the
        resource's chunks when the seller says how many, else a hundred chunks)."""
        self.client = client
        self.http = http
        self.budget = budget
        self.stream_timeout = stream_timeout
        self.streams: dict[tuple[str, str], OutgoingStream] = {}
        self.paid = 0
        """Base units paid in vouchers by this buyer."""

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(url, **kwargs)
        if response.status_code != 402:
            return response
        terms = self._terms(response)
        stream = await self._stream(terms)
        price = int(terms.amount)
        voucher = stream.voucher(stream.paid + price)
        payload = PaymentPayload(payload=voucher.to_json(), accepted=terms)
        headers = {**kwargs.pop("headers", {}),
                   PAYMENT_SIGNATURE_HEADER: encode_payment_signature_header(payload)}
        deadline = asyncio.get_running_loop().time() + STREAM_OPEN_WAIT
        while True:
            paid = await self.http.get(url, headers=headers, **kwargs)
            code = paid.json().get("code") if paid.status_code == 402 else None
            if code != "unknown_stream" or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)  # the node is still forwarding our stream
        if paid.status_code == 402:
            raise PaymentRefused(paid.json().get("error", "the seller refused the payment"))
        stream.acknowledged = voucher.amount
        self.paid += price
        return paid

    async def close(self) -> None:
        """Settle every stream we opened (each seller closes with our highest voucher)."""
        for stream in self.streams.values():
            await stream.close()

    def _terms(self, response: httpx.Response) -> PaymentRequirements:
        raw = response.headers.get(PAYMENT_REQUIRED_HEADER)
        if raw is None:
            raise PaymentRefused("402 without PAYMENT-REQUIRED terms")
        required = decode_payment_required_header(raw)
        network = f"eip155:{self.client.network.chain_id}"
        for terms in required.accepts:
            if (isinstance(terms, PaymentRequirements) and terms.scheme == SCHEME
                    and terms.network == network
                    and (terms.extra or {}).get("node") == self.client.node_address):
                return terms
        raise PaymentRefused(f"the seller accepts no {SCHEME} payment through our node")

    async def _stream(self, terms: PaymentRequirements) -> OutgoingStream:
        key = (terms.pay_to, terms.asset)
        stream = self.streams.get(key)
        if stream is not None and stream.budget - stream.paid >= int(terms.amount):
            return stream
        chunks = (terms.extra or {}).get("chunks")
        budget = self.budget or int(terms.amount) * (int(chunks) if chunks else 100)
        if budget < int(terms.amount):
            raise errors.InvalidAmount("the budget does not cover one chunk")
        stream = await self.client.streams.open(terms.pay_to, terms.asset, budget,
                                                timeout=self.stream_timeout)
        self.streams[key] = stream
        return stream
