"""Deposit: the channel address (text + QR), the local faucet, and checking for deposits.

Funds sent to the channel address are the user's as soon as they land on chain; the node's
watcher (or the "check" button) credits them to the channel with a deposit update, and the
balance updates live through the wallet's event stream.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from ..assets import Asset
from .common import current_wallet, explain, fmt, wallets
from .home import wallet_view
from .qr import qr_svg

bp = Blueprint("deposit", __name__)


def _render(**extra: Any) -> str:
    service, wallet = wallets(), current_wallet()
    try:
        view = service.run(wallet_view(service, wallet))
        faucet = service.faucet_enabled
    except Exception as exc:
        return render_template("deposit.html", error=explain(exc), **extra)
    return render_template("deposit.html", qr=qr_svg(view["channel_address"]),
                           faucet=faucet, assets=list(service.assets().values()),
                           **view, **extra)


@bp.get("/deposit")
def index() -> str:
    return _render()


@bp.post("/deposit/faucet")
def faucet() -> tuple[str, int] | str:
    service, wallet = wallets(), current_wallet()
    try:
        asset = service.asset(request.form.get("asset"))
        client = service.run(service.client(wallet))
        tx = service.faucet(wallet, asset, client.channel_address)
    except Exception as exc:
        return _render(errors={"asset": explain(exc)}), 422
    service.spawn(_reconcile(service, wallet, asset))
    return _render(progress={
        "asset": asset.symbol, "tx": tx,
        "text": f"Sent {fmt(asset, _faucet_amount(asset))} from the faucet to your channel "
                "address; waiting for it to reach your balance…",
    })


@bp.post("/deposit/check")
def check() -> tuple[str, int] | str:
    service, wallet = wallets(), current_wallet()

    async def reconcile_all() -> int:
        client = await service.client(wallet)
        before = await client.balances()
        for asset in service.assets().values():
            await client.reconcile_deposit(asset.address)
        after = await client.balances()
        changed: int = sum(1 for a, v in after.items() if v != before.get(a, 0))
        return changed

    try:
        changed = service.run(reconcile_all())
    except Exception as exc:
        return _render(errors={"check": explain(exc)}), 422
    note = "New deposits were credited." if changed else "No new deposits found yet."
    return _render(note=note)


def _faucet_amount(asset: Asset) -> int:
    return int(10**asset.decimals) * (1 if int(asset.address, 16) == 0 else 100)


async def _reconcile(service: Any, wallet: Any, asset: Asset) -> None:
    """Credit the faucet deposit now rather than waiting for the node's watcher."""
    client = await service.client(wallet)
    await client.reconcile_deposit(asset.address)
