"""A tiny oracle for the local stack and demos (`connext oracle`): it signs outcomes.

An oracle payment (the Signed definition) pays its recipient once the named oracle signs a
receipt `Receipt(paymentId, data)` in the Signed definition's EIP-712 domain. This service
holds an oracle key and signs whatever outcome it is asked to, over HTTP:

    GET  /                    {"address", "chainId", "definition"}
    POST /receipts            {"paymentId": "0x<32 bytes>", "data": "0x<32 bytes>"}
                              -> {"signer", "paymentId", "data", "signature"}

It is a demo: a real oracle decides what `data` is true before it signs. It never signs
anything but receipts of its own domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

from .protocol.encoding import receipt_digest
from .protocol.serialization import MalformedData, hexb, parse_bytes
from .protocol.signing import Signer

ANVIL_DEV_KEY_2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
"""anvil's third dev account: the local stack's oracle (0 deploys, 1 is the node)."""


@dataclass(frozen=True)
class Oracle:
    signer: Signer
    chain_id: int
    definition: str
    """The Signed definition's address (the receipts' verifying contract)."""

    def sign(self, payment_id: bytes, data: bytes) -> bytes:
        return self.signer.sign(receipt_digest(self.chain_id, self.definition, payment_id,
                                               data))


ORACLE_KEY: web.AppKey[Oracle] = web.AppKey("oracle")


async def _info(request: web.Request) -> web.Response:
    oracle = request.app[ORACLE_KEY]
    return web.json_response({"address": oracle.signer.address, "chainId": oracle.chain_id,
                              "definition": oracle.definition})


async def _receipt(request: web.Request) -> web.Response:
    oracle = request.app[ORACLE_KEY]
    try:
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            raise MalformedData("expected a JSON object")
        payment_id = parse_bytes(body.get("paymentId"), "paymentId", 32)
        data = parse_bytes(body.get("data"), "data", 32)
    except (ValueError, MalformedData) as exc:
        message = getattr(exc, "message", "the body must be JSON")
        return web.json_response({"error": message}, status=422)
    return web.json_response({"signer": oracle.signer.address, "paymentId": hexb(payment_id),
                              "data": hexb(data),
                              "signature": hexb(oracle.sign(payment_id, data))})


def application(oracle: Oracle) -> web.Application:
    app = web.Application(client_max_size=4096)
    app[ORACLE_KEY] = oracle
    app.add_routes([web.get("/", _info), web.post("/receipts", _receipt)])
    return app
