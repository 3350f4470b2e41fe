"""Link payments: create a claimable link (its secret lives only in the link), redeem a
link into the visiting wallet, cancel an unclaimed link to get the funds back.

The link puts its code in the URL fragment, which browsers never send to a server; the
Redeem page's form carries it in the POST body instead, so it stays out of access logs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Blueprint, render_template, request, url_for

from ..assets import InputError
from .common import config, current_wallet, explain, fmt, form_error, wallets
from .home import wallet_view
from .qr import qr_svg
from .send import new_payment_id, payment_id_of

bp = Blueprint("links", __name__)


def _link_url(code: str) -> str:
    base = config().public_url.rstrip("/") or request.host_url.rstrip("/")
    return f"{base}{url_for('links.redeem')}#{code}"


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    try:
        view = service.run(wallet_view(service, wallet))
        assets = service.assets()
    except Exception as exc:
        return render_template("links.html", error=explain(exc), **context), status
    records = _with_client_links(wallet, service.links(wallet))
    _refresh_statuses(wallet, records)
    links = []
    for link in records:
        asset = assets.get(link["asset_id"])
        links.append({**link, "url": _link_url(link["code"]),
                      "amount_text": fmt(asset, link["amount"]) if asset else link["amount"]})
    context.setdefault("payment_id", new_payment_id())
    return render_template("links.html", assets=list(assets.values()), links=links,
                           **view, **context), status


def _with_client_links(wallet: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The wallet's record of its links, completed from the client: a link whose creation
    got no answer (or whose page never came back) is shown all the same, with its code."""
    service = wallets()

    async def from_client() -> list[Any]:
        return list(await (await service.client(wallet)).links())

    try:
        known = service.run(from_client(), timeout=15)
    except Exception:
        return records
    by_routing = {r["routing_id"]: r for r in records}
    for link in known:
        routing = "0x" + link.routing_id.hex()
        mine = by_routing.get(routing)
        if mine is None:
            service.record_link(wallet, routing, link.code, link.asset_id, link.amount,
                                link.status)
        elif mine["status"] == "pending" and link.status != "pending":
            service.set_link_status(wallet, routing, link.status)
    return service.links(wallet)


def _refresh_statuses(wallet: Any, records: list[dict[str, Any]]) -> None:
    """Ask the node about links still open here (someone may have claimed one)."""
    service = wallets()
    open_links = [r for r in records if r["status"] == "open"]
    if not open_links:
        return

    async def statuses() -> list[str]:
        client = await service.client(wallet)
        return list(await asyncio.gather(*(
            client.link_status(bytes.fromhex(r["routing_id"][2:])) for r in open_links)))

    try:
        found = service.run(statuses(), timeout=15)
    except Exception:
        return  # the node is unreachable: show what we know
    for record, status in zip(open_links, found, strict=True):
        if status in ("claimed", "cancelled"):
            record["status"] = status
            service.set_link_status(wallet, record["routing_id"], status)


@bp.get("/links")
def index() -> tuple[str, int]:
    return _page(form={"amount": "", "asset": ""})


@bp.post("/links")
def create() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = {k: (request.form.get(k) or "").strip() for k in ("amount", "asset")}
    payment_id = payment_id_of(request.form.get("payment_id"))
    if payment_id is not None:
        payment_id = "link-" + payment_id
    try:
        asset = service.asset(form["asset"] or None, "asset")
        amount = asset.parse(form["amount"])

        async def create_link() -> Any:
            client = await service.client(wallet)
            balance = (await client.balances()).get(asset.address, 0)
            if amount > balance:
                raise InputError("amount",
                                 f"That is more than your balance ({fmt(asset, balance)}).")
            return await client.create_link(asset.address, amount, payment_id=payment_id)

        link = service.run(create_link())
    except Exception as exc:
        return _page(422, form=form, errors=form_error(exc, "form"))
    service.record_link(wallet, "0x" + link.routing_id.hex(), link.code, asset.address, amount,
                        "pending" if link.status == "pending" else "open")
    url = _link_url(link.code)
    return _page(form={"amount": "", "asset": form["asset"]}, created={
        "url": url, "qr": qr_svg(url, scale=3), "amount_text": fmt(asset, amount)})


@bp.post("/links/cancel")
def cancel() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    routing = request.form.get("routing_id") or ""
    mine = {link["routing_id"]: link for link in service.links(wallet)}
    if routing not in mine:
        return _page(422, form={"amount": "", "asset": ""},
                     errors={"links": "That link is not one of yours."})

    async def cancel_link() -> None:
        client = await service.client(wallet)
        await client.cancel_link(bytes.fromhex(routing[2:]))

    try:
        service.run(cancel_link())
    except Exception as exc:
        code = getattr(exc, "code", "")
        if code == "link_already_claimed":
            service.set_link_status(wallet, routing, "claimed")
        return _page(422, form={"amount": "", "asset": ""}, errors={"links": explain(exc)})
    service.set_link_status(wallet, routing, "cancelled")
    return _page(form={"amount": "", "asset": ""},
                 note="Link cancelled: the funds are back in your balance.")


@bp.get("/redeem")
def redeem() -> str:
    return render_template("redeem.html", code="")


@bp.post("/redeem")
def claim() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    code = (request.form.get("code") or "").strip()
    if "#" in code:  # a whole pasted link
        code = code.split("#", 1)[1]

    async def redeem_link() -> Any:
        client = await service.client(wallet)
        return await client.redeem_link(code)

    try:
        if not code:
            raise InputError("code", "Paste the payment link you were sent.")
        result = service.run(redeem_link(), timeout=45)
    except Exception as exc:
        return render_template("redeem.html", code=code,
                               errors={"code": explain(exc)}), 422
    return render_template("redeem.html", code="", result=result), 200
