"""The sales demo: two wallets side by side, funded from the faucet, paying each other live.

The two demo wallets belong to this browser's session (created on the first visit), so a
demo never touches the visitor's own wallet or anyone else's.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request, session

from connext.pay import PaymentNeeded
from connext.protocol.types import ETH

from ..chunks import CHUNKS, PRICE, Scene
from ..swaps import QuoteView
from ..wallets import Wallet
from .common import chunk_shop, config, explain, fmt, form_error, new_wallet, wallets
from .home import wallet_view

bp = Blueprint("demo", __name__)
DEMO_KEY = "demo_wallets"
NAMES = ("Alice's shop", "Bob")


def demo_wallets() -> list[Wallet]:
    service = wallets()
    found = [w for w in (service.get_wallet(i) for i in session.get(DEMO_KEY, [])) if w]
    if len(found) != 2:
        found = [new_wallet(), new_wallet()]
        session[DEMO_KEY] = [w.id for w in found]
    return found


def _panel(slot: int, **context: Any) -> dict[str, Any]:
    service = wallets()
    pair = demo_wallets()
    wallet, other = pair[slot], pair[1 - slot]
    panel: dict[str, Any] = {"slot": slot, "name": NAMES[slot], "wallet": wallet,
                             "other": other, "other_name": NAMES[1 - slot], **context}
    try:
        panel.update(service.run(wallet_view(service, wallet, activity=5)))
        panel["assets"] = list(service.assets().values())
        panel["deliverable"] = service.swaps.deliverable(panel["assets"])
        panel["faucet"] = service.faucet_enabled
    except Exception as exc:
        panel["error"] = explain(exc)
    return panel


@bp.get("/demo")
def index() -> str:
    return render_template("demo.html", panels=[_panel(0), _panel(1)], **_scene())


@bp.get("/demo/<int:slot>/live")
def live(slot: int) -> str:
    if slot not in (0, 1):
        abort(404)
    return render_template("partials/demo_live.html", panel=_panel(slot))


@bp.post("/demo/<int:slot>/faucet")
def faucet(slot: int) -> tuple[str, int]:
    if slot not in (0, 1):
        abort(404)
    service = wallets()
    wallet = demo_wallets()[slot]
    try:
        asset = service.asset(request.form.get("asset"))
        client = service.run(service.client(wallet))
        service.faucet(wallet, asset, client.channel_address)
        service.run(client.reconcile_deposit(asset.address))
    except Exception as exc:
        return render_template("partials/demo_panel.html",
                               panel=_panel(slot, errors={"faucet": explain(exc)})), 422
    return render_template("partials/demo_panel.html", panel=_panel(slot)), 200


@bp.post("/demo/<int:slot>/pay")
def pay(slot: int) -> tuple[str, int]:
    if slot not in (0, 1):
        abort(404)
    service = wallets()
    wallet, other = demo_wallets()[slot], demo_wallets()[1 - slot]
    try:
        asset = service.asset(request.form.get("asset"))
        amount = asset.parse(request.form.get("amount"))
        wanted = request.form.get("deliver")
        deliver = service.asset(wanted, "deliver") if wanted else asset
        swap: QuoteView | None = None

        async def send() -> Any:
            nonlocal swap
            client = await service.client(wallet)
            await service.client(other)  # the recipient must be online to claim at once
            quote = None
            if deliver.address != asset.address:  # swapped by the node on the way
                quote = await client.quote(asset.address, deliver.address, amount)
                swap = QuoteView(quote, asset, deliver)
            return await client.transfer(other.address, asset.address, amount, wait=30.0,
                                         quote=quote)

        result = service.run(send(), timeout=45)
    except Exception as exc:
        return render_template("partials/demo_panel.html",
                               panel=_panel(slot, errors=form_error(exc, "amount"))), 422
    note = f"Paid {fmt(asset, amount)}" if result.status == "completed" else result.status
    if swap is not None and result.status == "completed":
        note += (f"; {NAMES[1 - slot]} got {swap.deliver_text} (swapped by the node at its "
                 f"quote, fee {swap.fee_text})")
    return render_template("partials/demo_panel.html", panel=_panel(slot, note=note)), 200


# --- pay per chunk: the shop (slot 0) sells a file, Bob (slot 1) buys it chunk by chunk ------


def _scene(**extra: Any) -> dict[str, Any]:
    shop = demo_wallets()[0]
    chunk_shop().open_shop(shop)
    scene: Scene | None = chunk_shop().scenes.get(shop.address)
    eth = wallets().asset(ETH)
    return {"scene": scene, "chunks": CHUNKS, "price": fmt(eth, PRICE), "eth": eth, **extra}


@bp.get("/demo/chunks")
def chunks_status() -> str:
    return render_template("partials/demo_chunks.html", **_scene())


@bp.post("/demo/chunks")
def chunks_start() -> tuple[str, int]:
    service = wallets()
    shop, buyer = demo_wallets()
    try:
        balance = service.run(_balance(buyer))
        if balance < CHUNKS * PRICE:
            eth = service.asset(ETH)
            raise ValueError(f"Bob needs {fmt(eth, CHUNKS * PRICE)} to buy the file: press "
                             "Faucet on Bob's panel first.")
        chunk_shop().start(buyer, shop, _own_url())
    except ValueError as exc:
        return render_template("partials/demo_chunks.html", **_scene(error=str(exc))), 422
    except Exception as exc:
        return render_template("partials/demo_chunks.html", **_scene(error=explain(exc))), 422
    return render_template("partials/demo_chunks.html", **_scene()), 200


async def _balance(wallet: Wallet) -> int:
    client = await wallets().client(wallet)
    return (await client.balances()).get(ETH, 0)


def _own_url() -> str:
    """Where this server answers itself (the buyer downloads over real HTTP)."""
    host = config().host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{host}:{config().port}"


@bp.get("/demo/shop/<address>/file")
def shop_file(address: str) -> Response:
    info = chunk_shop().info(address)
    if info is None:
        abort(404)
    return jsonify(info)


@bp.get("/demo/shop/<address>/file/<int:k>")
def shop_chunk(address: str, k: int) -> Response:
    """One chunk of the shop's file: 402 with the terms until a voucher pays for it."""
    shop = chunk_shop()
    data = shop.chunk(address, k)
    seller = None if data is None else shop.seller(address)
    if seller is None or data is None:
        abort(404)
    try:
        paid = seller.check(dict(request.headers), request.url, chunks=CHUNKS)
    except PaymentNeeded as needed:
        return Response(json.dumps(needed.body), status=402, headers=needed.headers,
                        mimetype="application/json")
    shop.sold(address, paid.total)
    return Response(data, status=200, headers=paid.headers,
                    mimetype="application/octet-stream")
