"""The node's HTTP API on its own port: health, config, channels, metrics, admin.

Health and config are open; metrics go to whom CONNEXT_NODE_METRICS says (this machine by
default). A channel's signed state is for its parties only: the
channel route needs the admin token or a request signed by one of the channel's two
parties (headers below, docs/NODE.md), since a double-signed state is what a dispute is
made of. Admin routes need `Authorization: Bearer <admin token>` and are disabled when no
token is configured; the operator's routes are in admin.py, the OpenAPI document of all of
them in openapi.py. Nothing here changes a channel: that is NATS's job.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..protocol.encoding import node_request_digest
from ..protocol.serialization import state_to_json, transfer_to_json, update_to_json
from ..protocol.signing import recover

if TYPE_CHECKING:
    from .service import Node

NODE_KEY: web.AppKey[Node] = web.AppKey("node")

SIGNER_HEADER = "X-Connext-Signer"
TIMESTAMP_HEADER = "X-Connext-Timestamp"
SIGNATURE_HEADER = "X-Connext-Signature"
REQUEST_WINDOW_MS = 60_000
"""A signed request is accepted this long around its timestamp (unix milliseconds)."""


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return web.json_response({"status": "ok", "address": node.address})


async def config(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE_KEY].info())


async def channel(request: web.Request) -> web.Response:
    """The channel's latest double-signed state, for the admin or one of its parties."""
    node = request.app[NODE_KEY]
    address = request.match_info["address"]
    admin = _is_admin(request)
    signer = None if admin else _request_signer(request)
    stored = await node.engine.channel(_checksum(address))
    if not admin and (stored is None or signer not in (stored.state.alice, stored.state.bob)):
        # the same answer for a channel that does not exist: nothing leaks to outsiders
        raise web.HTTPForbidden(
            text='{"error": "only the channel\'s parties (a signed request) or the admin"}',
            content_type="application/json")
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
    """Prometheus metrics, to whom CONNEXT_NODE_METRICS allows (local requests by default:
    the numbers show volumes and liquidity)."""
    node = request.app[NODE_KEY]
    peer = request.transport.get_extra_info("peername") if request.transport else None
    refusal = metrics_refusal(node.config.metrics_access, str(peer[0]) if peer else "",
                              _is_admin(request))
    if refusal == 401:
        _require_admin(request)
    if refusal == 403:
        raise web.HTTPForbidden(
            text='{"error": "metrics are served to this machine only (CONNEXT_NODE_METRICS)"}',
            content_type="application/json")
    return web.Response(body=node.metrics.render(), content_type="text/plain",
                        charset="utf-8")


def metrics_refusal(access: str, peer_host: str, admin: bool) -> int | None:
    """None when the request may read the metrics, else the HTTP status refusing it."""
    if access == "public" or admin:
        return None
    if access == "admin":
        return 401
    local = peer_host in ("127.0.0.1", "::1") or peer_host.startswith("::ffff:127.")
    return None if local else 403


async def admin_channels(request: web.Request) -> web.Response:
    _require_admin(request)
    node = request.app[NODE_KEY]
    states = await node.store.run(node.store.list_channels)
    return web.json_response({"channels": [state_to_json(s) for s in states]})


def _require_admin(request: web.Request) -> None:
    if not _is_admin(request):
        raise web.HTTPUnauthorized(text='{"error": "admin token required"}',
                                   content_type="application/json")


def _is_admin(request: web.Request) -> bool:
    token = request.app[NODE_KEY].config.admin_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return bool(token) and hmac.compare_digest(given.encode(), str(token).encode())


def _request_signer(request: web.Request) -> str:
    """The address that signed this request (NodeRequest: method, path, timestamp, under
    the node's "Connext Node Request" domain), or 401."""
    node = request.app[NODE_KEY]
    try:
        claimed = _checksum(request.headers[SIGNER_HEADER])
        timestamp = int(request.headers[TIMESTAMP_HEADER])
        signature = bytes.fromhex(request.headers[SIGNATURE_HEADER].removeprefix("0x"))
    except (KeyError, ValueError, web.HTTPBadRequest):
        raise web.HTTPUnauthorized(
            text='{"error": "sign the request (X-Connext-Signer, X-Connext-Timestamp, '
                 'X-Connext-Signature) or give the admin token"}',
            content_type="application/json") from None
    if abs(timestamp - int(time.time() * 1000)) > REQUEST_WINDOW_MS:
        raise web.HTTPUnauthorized(text='{"error": "the request\'s timestamp is stale"}',
                                   content_type="application/json")
    digest = node_request_digest(node.network.chain_id, node.address, request.method,
                                 request.path, timestamp)
    try:
        signer = recover(digest, signature)
    except Exception:
        signer = None
    if signer != claimed:
        raise web.HTTPUnauthorized(text='{"error": "the request\'s signature is invalid"}',
                                   content_type="application/json")
    return claimed


def _checksum(address: str) -> str:
    from ..protocol.serialization import MalformedData, parse_address

    try:
        return parse_address(address, "address")
    except MalformedData as exc:
        raise web.HTTPBadRequest(text=f'{{"error": "{exc.message}"}}',
                                 content_type="application/json") from exc


async def openapi(request: web.Request) -> web.Response:
    from .openapi import document

    return web.json_response(document())


def routes() -> list[web.RouteDef]:
    """Every route of the node's HTTP API (each one is in the OpenAPI document)."""
    from .admin import admin_routes  # the operator's routes (admin.py imports from here)

    return [
        web.get("/healthz", healthz),
        web.get("/config", config),
        web.get("/openapi.json", openapi),
        web.get("/channels/{address}", channel),
        web.get("/metrics", metrics),
        web.get("/admin/channels", admin_channels),
        *admin_routes(),
    ]


async def start_http(node: Node) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app[NODE_KEY] = node
    app.add_routes(routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, node.config.http_host, node.config.http_port)
    await site.start()
    port = node.config.http_port
    if port == 0:
        port = int(runner.addresses[0][1])
    return runner, port
