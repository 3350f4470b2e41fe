"""Home (balances, channel status, recent activity), Activity, and the channel inspector."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.protocol.types import ChannelState, CreateDetails
from connext.store import StoredChannel

from ..assets import Asset
from ..wallets import Wallet, WalletService
from .common import current_wallet, explain, wallets

bp = Blueprint("home", __name__)

LABELS = {
    "transfer.sent": "Sending",
    "transfer.received": "Received",
    "transfer.completed": "Sent",
    "transfer.cancelled": "Refunded",
    "transfer.incoming": "Incoming",
    "deposit.reconciled": "Deposit",
    "withdrawal.confirmed": "Cash out",
    "withdrawal.failed": "Cash out failed",
    "channel.disputed": "Channel disputed on chain",
    "channel.dispute_answered": "Old state disputed by the node: answered",
    "transfer.secret_registered": "Claim secured on chain (the node did not confirm it)",
    "transfer.unanswered": "Sending (waiting for the node)",
    "stream.opened": "Stream to you",
}
STREAM_LABELS = {"transfer.sent": "Stream open", "transfer.completed": "Stream settled",
                 "transfer.cancelled": "Stream refunded", "transfer.received": "Stream received"}
ORACLE_LABELS = {"transfer.sent": "Waiting for the oracle",
                 "transfer.incoming": "Oracle payment to claim",
                 "transfer.completed": "Oracle payment claimed",
                 "transfer.cancelled": "Oracle payment refunded",
                 "transfer.received": "Received on the oracle's receipt"}


async def wallet_view(service: WalletService, wallet: Wallet, *,
                      activity: int = 8) -> dict[str, Any]:
    """Everything the wallet screens show, in one trip to the loop."""
    client = await service.client(wallet)
    state = await client.channel()
    events = await asyncio.to_thread(client.store.events, client.channel_address,
                                     newest_first=True, limit=activity * 3)
    events = latest_per_payment([e for e in events if e.kind in LABELS])[:activity]
    lines = [describe_event(service, e.kind, dict(e.payload), e.created_at, e.id)
             for e in events]
    unsent = await unanswered_payment(client)
    if unsent is not None:
        lines.insert(0, describe_event(service, "transfer.unanswered", unsent,
                                       datetime.now(UTC), 0))
    return {
        "state": state,
        "closing": client.channel_address in client.engine.disputed,
        "channel_address": client.channel_address,
        "balances": balances(service, state),
        "activity": lines[:activity],
    }


async def unanswered_payment(client: Any) -> dict[str, Any] | None:
    """A payment of ours the node has not answered yet (its fate is not known; the client
    keeps sending it): the activity shows it as pending until it lands or is refused."""
    stored = await client.engine.channel(client.channel_address)
    pending = None if stored is None else stored.pending_update
    details = None if pending is None else pending.details
    if (pending is None or not isinstance(details, CreateDetails)
            or pending.initiator != client.address or "routingId" not in details.meta):
        return None
    return {"transferId": "0x" + details.transfer_id.hex(), "assetId": details.asset_id,
            "amount": str(details.balance.amount[0]), "to": details.meta.get("recipient"),
            **({"link": True} if "link" in details.meta else {})}


SETTLED = ("transfer.completed", "transfer.cancelled")


def latest_per_payment(events: list[Any]) -> list[Any]:
    """One line per payment: its outcome once settled, else "Sending" or "Incoming"
    (pending). Newest first; the node's collateral events are left out by the caller."""
    settled = {e.payload.get("transferId") for e in events if e.kind in SETTLED}
    received = {e.payload.get("transferId") for e in events if e.kind == "transfer.received"}
    return [e for e in events
            if not (e.kind == "transfer.sent" and e.payload.get("transferId") in settled)
            and not (e.kind in ("transfer.incoming", "stream.opened")
                     and e.payload.get("transferId") in received)]


def balances(service: WalletService, state: ChannelState) -> list[dict[str, Any]]:
    rows = []
    for asset in service.assets().values():
        amount = state.balance_of(asset.address).bob
        rows.append({"asset": asset, "amount": amount, "text": asset.format(amount)})
    return rows


def describe_event(service: WalletService, kind: str, payload: dict[str, Any],
                   created_at: Any, event_id: int) -> dict[str, Any]:
    asset: Asset | None = service.assets().get(payload.get("assetId", ""))
    amount = payload.get("amount")
    text = ""
    if asset is not None and isinstance(amount, str) and amount.isdigit():
        text = f"{asset.format(int(amount))} {asset.symbol}"
    elif asset is not None:
        text = asset.symbol
    counterparty = payload.get("from") if kind == "transfer.received" else payload.get("to")
    if kind.startswith("withdrawal"):
        counterparty = payload.get("recipient")
    when = created_at.replace(tzinfo=UTC) if created_at.tzinfo is None else created_at
    status = {"withdrawal.failed": "failed", "transfer.cancelled": "refunded",
              "transfer.incoming": "pending", "transfer.sent": "pending",
              "stream.opened": "pending",
              "transfer.unanswered": "pending"}.get(kind, "done")
    label = LABELS.get(kind, kind)
    if payload.get("stream"):
        label = STREAM_LABELS.get(kind, label)
    elif payload.get("oracle"):
        label = ORACLE_LABELS.get(kind, label)
    if payload.get("link"):  # a link payment: nobody to name until it is claimed
        counterparty = None
        label = {"transfer.sent": "Link open", "transfer.completed": "Link claimed",
                 "transfer.cancelled": "Link refunded",
                 "transfer.unanswered": "Link (waiting for the node)"}.get(kind, label)
    return {
        "id": event_id, "kind": kind, "label": label, "amount": text,
        "counterparty": counterparty if isinstance(counterparty, str) else "",
        "tx": payload.get("transactionHash", ""), "status": status,
        "when": when.strftime("%Y-%m-%d %H:%M:%S UTC"), "iso": when.isoformat(),
    }


def _page(template: str, activity: int = 8, **extra: Any) -> str:
    service, wallet = wallets(), current_wallet()
    try:
        view = service.run(wallet_view(service, wallet, activity=activity))
    except Exception as exc:
        return render_template(template, error=explain(exc), **extra)
    return render_template(template, **view, **extra)


@bp.get("/")
def index() -> str:
    return _page("home.html")


@bp.get("/partials/balances")
def balances_partial() -> str:
    return _page("partials/balances.html")


@bp.get("/activity")
def activity() -> str:
    return _page("activity.html", activity=200)


@bp.get("/partials/activity")
def activity_partial() -> str:
    return _page("partials/activity.html", activity=8)


@bp.get("/channel")
def inspector() -> tuple[str, int]:
    return inspector_page()


def inspector_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    """The inspector; `extra` carries the outcome of a force-close or exit form."""
    service, wallet = wallets(), current_wallet()

    async def load() -> dict[str, Any]:
        client = await service.client(wallet)
        stored = await client.engine.channel(client.channel_address)
        assert stored is not None
        return {"stored": stored, "channel_address": client.channel_address,
                "node_address": client.node_address,
                "definitions": client.definition_names}

    try:
        view = service.run(load())
        view["onchain"] = onchain_status(service, view["channel_address"], view["stored"])
    except Exception as exc:
        return render_template("inspector.html", error=explain(exc), **extra), status
    return render_template("inspector.html", **view, assets=service.assets(),
                           faucet=service.faucet_enabled, **extra), status


def onchain_status(service: WalletService, channel_address: str,
                   stored: StoredChannel) -> dict[str, Any]:
    """The channel's contract as the chain sees it: deployed, what it holds, its dispute
    (nonce, when the window ends, whether it is over) and the block time."""
    w3 = connect(service.config.chain_url)
    code = w3.eth.get_code(w3.to_checksum_address(channel_address))
    held = {asset.symbol: asset.format(_holding(w3, asset, channel_address))
            for asset in service.assets().values()}
    now = int(w3.eth.get_block("latest")["timestamp"])
    dispute = None
    if len(code) > 0:
        state = stored.state
        record = ChannelContract(w3, channel_address, state.alice, state.bob).channel_dispute()
        if record.nonce > 0:
            dispute = {"nonce": record.nonce, "until": _utc(record.consensus_expiry),
                       "over": now >= record.consensus_expiry}
    return {"deployed": len(code) > 0, "held": held, "dispute": dispute, "now": _utc(now)}


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _holding(w3: Any, asset: Asset, owner: str) -> int:
    if int(asset.address, 16) == 0:
        return int(w3.eth.get_balance(owner))
    from connext.chain.contracts import contract

    return int(contract(w3, "TestToken", asset.address).functions.balanceOf(owner).call())
