"""The node's HTTP API on its own port: health, config, channels, metrics, admin.

Read-only routes are open; admin routes need `Authorization: Bearer <admin token>` and are
disabled when no token is configured. Nothing here changes a channel: that is NATS's job.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..protocol.serialization import state_to_json, transfer_to_json, update_to_json

if TYPE_CHECKING:
    from .service import Node

NODE_KEY: web.AppKey[Node] = web.AppKey("node")


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return web.json_response({"status": "ok", "address": node.address})


async def config(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE_KEY].info())


async def channel(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    address = request.match_info["address"]
    stored = await node.engine.channel(_checksum(address))
    if stored is None:
        raise web.HTTPNotFound(text=f'{{"error": "no channel {address}"}}',
                               content_type="application/json")
    body: dict[str, Any] = {
        "state": state_to_json(stored.state),
        "latestUpdate": None if stored.latest_update is None
        else update_to_json(stored.latest_update),
        "activeTransfers": [transfer_to_json(t) for t in stored.transfers.values()],
    }
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[NODE_KEY].metrics.render(),
                        content_type="text/plain", charset="utf-8")


async def admin_channels(request: web.Request) -> web.Response:
    _require_admin(request)
    node = request.app[NODE_KEY]
    states = await asyncio.to_thread(node.store.list_channels)
    return web.json_response({"channels": [state_to_json(s) for s in states]})


def _require_admin(request: web.Request) -> None:
    token = request.app[NODE_KEY].config.admin_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPUnauthorized(text='{"error": "admin token required"}',
                                   content_type="application/json")


def _checksum(address: str) -> str:
    from ..protocol.serialization import MalformedData, parse_address

    try:
        return parse_address(address, "address")
    except MalformedData as exc:
        raise web.HTTPBadRequest(text=f'{{"error": "{exc.message}"}}',
                                 content_type="application/json") from exc


async def start_http(node: Node) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app[NODE_KEY] = node
    app.add_routes([
        web.get("/healthz", healthz),
        web.get("/config", config),
        web.get("/channels/{address}", channel),
        web.get("/metrics", metrics),
        web.get("/admin/channels", admin_channels),
    ])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, node.config.http_host, node.config.http_port)
    await site.start()
    port = node.config.http_port
    if port == 0:
        port = int(runner.addresses[0][1])
    return runner, port
