"""The operator's admin API on the node's HTTP port: liquidity, channels, payments and
failures, collateral transactions and profiles, rates, and the same in one summary (which
`connext node status` prints and the wallet's operator dashboard charts).

Every route here needs `Authorization: Bearer <CONNEXT_ADMIN_TOKEN>` (401 otherwise, and
always when no token is configured). Only profiles can be changed, and a bad profile is
refused with 400 and changes nothing. The OpenAPI document (/openapi.json) describes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..protocol.types import ETH, Address
from ..store.records import Routing
from .http import NODE_KEY, _checksum, _require_admin
from .profiles import InvalidProfile, profile_from_json, profile_to_json

if TYPE_CHECKING:
    from .service import Node

MAX_LIMIT = 500
MAX_MINUTES = 24 * 60
COLLATERAL_EVENTS = {"collateral.deposited": "deposit", "collateral.reclaimed": "reclaim"}
SUMMARY_WINDOW = timedelta(hours=24)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}),
                              content_type="application/json")


def _node(request: web.Request) -> Node:
    _require_admin(request)
    return request.app[NODE_KEY]


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise _bad_request(f"{name} must be a whole number from 1 to {maximum}")
    return int(raw)


def routing_to_json(routing: Routing) -> dict[str, Any]:
    return {
        "routingId": "0x" + routing.routing_id.hex(),
        "status": routing.status.value,
        "senderChannel": routing.sender_channel,
        "assetId": routing.asset_id,
        "amount": str(routing.amount),
        "recipient": routing.recipient,
        "recipientChannel": routing.recipient_channel,
        "recipientAssetId": routing.recipient_asset_id,
        "recipientAmount": None if routing.recipient_amount is None
        else str(routing.recipient_amount),
        "error": routing.error,
        "createdAt": routing.created_at.isoformat(),
        "updatedAt": routing.updated_at.isoformat(),
    }


# --- reads -------------------------------------------------------------------------------

async def summary(request: web.Request) -> web.Response:
    return web.json_response(await node_summary(_node(request)))


async def node_summary(node: Node) -> dict[str, Any]:
    """Everything an operator looks at first (also `connext node status`)."""
    liquidity = await node.liquidity.read()
    counts = await node.store.run(node.store.routing_counts)
    since = datetime.now(UTC) - SUMMARY_WINDOW
    volume: dict[Address, dict[str, int]] = {}
    for total in await node.store.run(node.store.routing_totals, since):
        if total.status == "resolved":
            volume[total.asset_id] = {"payments": total.payments, "amount": total.amount}
    metric = node.metrics.registry.get_sample_value
    assets = sorted({*liquidity, *volume})
    return {
        "address": node.address,
        "chainId": node.network.chain_id,
        "channels": await node.store.run(node.store.channel_count, node.address),
        "liquidity": [liquidity[a].to_json() for a in sorted(liquidity)],
        "lowLiquidity": sorted(a for a, reading in liquidity.items() if reading.low),
        "payments": {"byStatus": counts, "total": sum(counts.values())},
        "volume24h": [{"assetId": a, "payments": volume[a]["payments"],
                       "amount": str(volume[a]["amount"])} for a in sorted(volume)],
        "sinceStart": [{
            "assetId": a,
            "volume": str(int(metric("connext_payment_volume_total", {"asset": a}) or 0)),
            "fees": str(int(metric("connext_fees_total", {"asset": a}) or 0)),
            "collateralDeposited": str(int(
                metric("connext_collateral_deposited_total", {"asset": a}) or 0)),
            "collateralReclaimed": str(int(
                metric("connext_collateral_reclaimed_total", {"asset": a}) or 0)),
        } for a in assets],
        "collateral": {"depositsInFlight": node.collateral.depositing},
    }


async def liquidity(request: web.Request) -> web.Response:
    node = _node(request)
    readings = await node.liquidity.read()
    return web.json_response({"liquidity": [readings[a].to_json() for a in sorted(readings)]})


async def payments(request: web.Request) -> web.Response:
    node = _node(request)
    limit = _int_query(request, "limit", 50, MAX_LIMIT)
    status = request.query.get("status")
    statuses = None
    if status is not None:
        allowed = ("pending", "link", "forwarded", "resolved", "cancelled", "failed")
        if status not in allowed:
            raise _bad_request(f"status must be one of {', '.join(allowed)}")
        statuses = (status,)
    routings = await node.store.run(node.store.recent_routings, limit=limit, statuses=statuses)
    return web.json_response({"payments": [routing_to_json(r) for r in routings]})


async def failures(request: web.Request) -> web.Response:
    """Payments that failed (with why) and requests answered with an error, by code."""
    node = _node(request)
    limit = _int_query(request, "limit", 50, MAX_LIMIT)
    failed = await node.store.run(node.store.recent_routings, limit=limit,
                                  statuses=("failed",))
    requests = []
    for family in node.metrics.registry.collect():
        if family.name == "connext_request_failures":
            requests = [{"method": s.labels["method"], "code": s.labels["code"],
                         "count": int(s.value)}
                        for s in family.samples if s.name.endswith("_total")]
    return web.json_response({"payments": [routing_to_json(r) for r in failed],
                              "requests": requests})


async def collateral(request: web.Request) -> web.Response:
    """The node's collateral transactions, newest first: deposits and reclaims."""
    node = _node(request)
    limit = _int_query(request, "limit", 50, MAX_LIMIT)
    events = await node.store.run(node.store.events_of_kinds, tuple(COLLATERAL_EVENTS),
                                  limit=limit)
    return web.json_response({
        "transactions": [{"kind": COLLATERAL_EVENTS[e.kind], "channelAddress": e.channel_address,
                          **e.payload, "at": e.created_at.isoformat()} for e in events],
        "depositsInFlight": node.collateral.depositing,
    })


async def timeline(request: web.Request) -> web.Response:
    """Payments and volume per minute over the last `minutes` (default 60)."""
    node = _node(request)
    minutes = _int_query(request, "minutes", 60, MAX_MINUTES)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    totals = await node.store.run(node.store.routing_totals, start, by_minute=True)
    buckets = [{"minute": (start + timedelta(minutes=i)).isoformat(), "payments": 0,
                "resolved": 0, "failed": 0, "volume": {}} for i in range(minutes)]
    for total in totals:
        assert total.minute is not None
        index = int((total.minute - start).total_seconds() // 60)
        if not 0 <= index < minutes:
            continue
        bucket: dict[str, Any] = buckets[index]
        bucket["payments"] += total.payments
        if total.status == "resolved":
            bucket["resolved"] += total.payments
            bucket["volume"][total.asset_id] = str(total.amount)
        elif total.status in ("failed", "cancelled"):
            bucket["failed"] += total.payments
    return web.json_response({"minutes": buckets})


async def rates(request: web.Request) -> web.Response:
    """The node's swap pairs with their current rates and fees, and where the rates come
    from (the configuration, or the operator's rate feed)."""
    node = _node(request)
    info = node.swaps.info()
    feed = node.swaps.feed
    return web.json_response({"rates": info["swaps"], "assets": info["assets"],
                              "source": "config" if feed is None else str(feed.source)})


# --- collateral profiles -------------------------------------------------------------------

async def profiles(request: web.Request) -> web.Response:
    node = _node(request)
    cfg = node.config
    assets = sorted({ETH, *cfg.collateral, *(node.liquidity.latest or {})})
    return web.json_response({
        "assets": [{"assetId": a, **profile_to_json(cfg.collateral_for(a))} for a in assets],
        "channels": [{"channelAddress": channel, "assetId": asset, **profile_to_json(p)}
                     for (channel, asset), p in sorted(node.profiles.channel_profiles().items())],
    })


async def _profile_target(request: web.Request) -> tuple[Node, Address, Address]:
    node = _node(request)
    channel = _checksum(request.match_info["channel"])
    asset = _checksum(request.match_info["asset"])
    stored = await node.engine.channel(channel)
    if stored is None or node.address not in (stored.state.alice, stored.state.bob):
        raise web.HTTPNotFound(text=json.dumps({"error": f"the node has no channel {channel}"}),
                               content_type="application/json")
    return node, channel, asset


async def set_profile(request: web.Request) -> web.Response:
    """Set one channel's profile for one asset: {threshold, target, reclaimThreshold, cap}."""
    node, channel, asset = await _profile_target(request)
    try:
        body = await request.json()
    except ValueError:  # not JSON, not UTF-8, or a number too long to read
        raise _bad_request("the body must be JSON") from None
    try:
        profile = profile_from_json(body)
    except InvalidProfile as exc:
        raise _bad_request(str(exc)) from exc
    await node.profiles.set(channel, asset, profile)
    return web.json_response({"channelAddress": channel, "assetId": asset,
                              **profile_to_json(profile)})


async def delete_profile(request: web.Request) -> web.Response:
    node, channel, asset = await _profile_target(request)
    if not await node.profiles.forget(channel, asset):
        raise web.HTTPNotFound(text=json.dumps({"error": "no profile set for this channel"}),
                               content_type="application/json")
    return web.json_response({"channelAddress": channel, "assetId": asset,
                              **profile_to_json(node.config.collateral_for(asset))})


def admin_routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/summary", summary),
        web.get("/admin/liquidity", liquidity),
        web.get("/admin/payments", payments),
        web.get("/admin/failures", failures),
        web.get("/admin/collateral", collateral),
        web.get("/admin/timeline", timeline),
        web.get("/admin/rates", rates),
        web.get("/admin/profiles", profiles),
        web.put("/admin/profiles/{channel}/{asset}", set_profile),
        web.delete("/admin/profiles/{channel}/{asset}", delete_profile),
    ]
