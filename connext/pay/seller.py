"""The seller's side of pay-per-chunk: 402 and its terms until a voucher covers the chunk.

`ChunkSeller.check(headers, url)` is framework-neutral: it returns `Paid` (serve the chunk,
send `Paid.headers`) or raises `PaymentNeeded` (answer 402 with its headers and body).
`flask_response` wraps it for a Flask view; any WSGI or ASGI app calls `check` the same
way. A voucher is checked by the seller's client exactly like one sent over NATS (signed
by the stream's payer, for a stream paying us, increasing, within the budget) and must
raise the stream's total by at least one chunk's price; it is stored before the chunk
goes out. Never serve a chunk before `check` returned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
)
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

from ..client import Client
from ..client.streams import Voucher
from ..protocol import errors
from ..protocol.serialization import parse_bytes, parse_uint

T = TypeVar("T")

SCHEME = "connext-stream"
"""Our x402 scheme: a cumulative stream voucher per request, the stream funded once."""


class PaymentNeeded(Exception):
    """Answer with 402: `headers` carry the terms (PAYMENT-REQUIRED), `body` says why."""

    def __init__(self, headers: dict[str, str], body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "payment required"))
        self.headers = headers
        self.body = body


@dataclass(frozen=True)
class Paid:
    """A chunk paid for: serve it with these headers (the PAYMENT-RESPONSE receipt)."""

    stream_id: bytes
    payer: str
    total: int
    """The stream's total so far (the highest voucher)."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ChunkSeller:
    """Sells chunks of resources for `price` base units of `asset_id` each, paid into the
    seller's own channel (`client`). `run` executes a coroutine on the client's event
    loop from the web server's thread (e.g. `asyncio.run_coroutine_threadsafe(...)
    .result()`; `WalletService.run` in the wallet)."""

    client: Client
    run: Callable[[Coroutine[Any, Any, Any]], Any]
    price: int
    asset_id: str
    max_timeout_seconds: int = 3600

    @property
    def network(self) -> str:
        return f"eip155:{self.client.network.chain_id}"

    def requirements(self, chunks: int | None = None) -> PaymentRequirements:
        """What one chunk costs and how to pay it."""
        return PaymentRequirements(
            scheme=SCHEME, network=self.network, asset=self.asset_id, amount=str(self.price),
            pay_to=self.client.address, max_timeout_seconds=self.max_timeout_seconds,
            extra={"node": self.client.node_address, "chunks": chunks,
                   "voucher": "the payer's stream voucher for its new total, in "
                              "PAYMENT-SIGNATURE's payload {streamId, amount, signature}"})

    def check(self, headers: Mapping[str, str], url: str, *,
              chunks: int | None = None) -> Paid:
        """`Paid` when the request carries a voucher covering one more chunk, else raises
        `PaymentNeeded` (nothing is served, nothing is recorded)."""
        raw = _header(headers, PAYMENT_SIGNATURE_HEADER)
        if raw is None:
            raise self._needed(url, chunks, "payment_required",
                               "this resource is paid per chunk: send a stream voucher")
        try:
            payload = decode_payment_signature_header(raw)
            body = payload.payload
            voucher = Voucher(parse_bytes(body.get("streamId"), "streamId", 32),
                              parse_uint(body.get("amount"), "amount"),
                              parse_bytes(body.get("signature"), "signature", 65))
            scheme = payload.accepted.scheme if hasattr(payload, "accepted") else None
        except Exception as exc:
            raise self._needed(url, chunks, "invalid_payment",
                               f"PAYMENT-SIGNATURE is not a voucher: {exc}") from None
        if scheme != SCHEME:
            raise self._needed(url, chunks, "invalid_payment", f"only {SCHEME} is accepted")
        try:
            total, payer = self.run(self._accept(voucher))
        except errors.ProtocolError as exc:
            raise self._needed(url, chunks, exc.code, exc.message) from None
        receipt = SettleResponse(success=True, transaction="0x" + voucher.stream_id.hex(),
                                 network=self.network, payer=payer, amount=str(total))
        return Paid(voucher.stream_id, payer, total,
                    {PAYMENT_RESPONSE_HEADER: encode_payment_response_header(receipt)})

    async def _accept(self, voucher: Voucher) -> tuple[int, str]:
        streams = self.client.streams
        before = await streams.highest(voucher.stream_id)
        paid_so_far = 0 if before is None else before.amount
        if voucher.amount < paid_so_far + self.price:
            raise errors.VoucherNotIncreasing(
                f"a chunk costs {self.price}: the voucher must be for at least "
                f"{paid_so_far + self.price}")
        transfer = await streams._incoming(voucher.stream_id)
        if transfer.asset_id != self.asset_id:
            raise errors.UnknownStream(f"this resource is paid in {self.asset_id}")
        total = await streams.accept([voucher])
        payer: str = str(transfer.meta.get("sender", transfer.initiator))
        return total, payer

    def _needed(self, url: str, chunks: int | None, code: str,
                message: str) -> PaymentNeeded:
        terms = PaymentRequired(error=message, resource=ResourceInfo(url=url),
                                accepts=[self.requirements(chunks)])
        return PaymentNeeded({PAYMENT_REQUIRED_HEADER: encode_payment_required_header(terms)},
                             {"error": message, "code": code})

    def flask_response(self, request: Any, data: bytes, *, chunks: int | None = None,
                       mimetype: str = "application/octet-stream") -> Any:
        """A Flask response for one chunk: 402 with the terms, or the chunk with its
        receipt."""
        from flask import Response

        try:
            paid = self.check(request.headers, request.url, chunks=chunks)
        except PaymentNeeded as needed:
            return Response(json.dumps(needed.body), status=402, headers=needed.headers,
                            mimetype="application/json")
        return Response(data, status=200, headers=paid.headers, mimetype=mimetype)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def runner(loop: asyncio.AbstractEventLoop, timeout: float = 30.0
           ) -> Callable[[Coroutine[Any, Any, T]], T]:
    """A `run` for `ChunkSeller` when the client lives on `loop` in another thread."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    return run
