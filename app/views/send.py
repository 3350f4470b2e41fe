"""Send (recipient, amount, asset -> review -> send -> result) and Request (a link + QR
that opens the payer's Send screen prefilled).

A recipient may be typed as an address or pasted as a request link. Nothing is sent until
the review is confirmed; every rejected input is a message next to its field. The review
carries a payment id (an idempotency key): confirming twice (a double click, a reload after
a timeout) sends one payment, and a payment whose fate the node has not told yet shows as
pending until it ends. A payment may deliver another asset than it pays with: the review
asks the node for a quote (rate, fee, expiry) and the confirmation pays with it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Blueprint, render_template, url_for
from flask import request as http

from ..assets import Asset, InputError, parse_address
from ..swaps import QuoteView, quote_of_form
from ..wallets import Wallet, WalletService
from .common import config, current_wallet, explain, fmt, form_error, wallets
from .home import wallet_view
from .qr import qr_svg

bp = Blueprint("send", __name__)


def new_payment_id() -> str:
    """The idempotency key a form carries: one payment however often it is posted."""
    return secrets.token_hex(16)


def payment_id_of(value: str | None) -> str | None:
    """The key from a posted form (32 hex digits), or None for a form without one."""
    if value is None or re.fullmatch(r"[0-9a-f]{32}", value) is None:
        return None
    return f"web:{value}"


def _form(source: Any) -> dict[str, str]:
    return {k: (source.get(k) or "").strip() for k in ("to", "amount", "asset", "deliver")}


def _with_request_link(form: dict[str, str]) -> dict[str, str]:
    """A pasted request link fills recipient, amount and asset from the link."""
    if "?" not in form["to"] or "to=" not in form["to"]:
        return form
    query = parse_qs(urlsplit(form["to"]).query)
    filled = dict(form, to=query.get("to", [""])[0])
    for key in ("amount", "asset"):
        if not filled[key] and query.get(key):
            filled[key] = query[key][0]
    return filled


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    service = wallets()
    try:
        assets = list(service.assets().values())
    except Exception as exc:
        context.setdefault("error", explain(exc))
        assets = []
    return render_template(template, assets=assets, deliverable=service.swaps.deliverable(assets),
                           **context), status


def validate(service: WalletService, wallet: Wallet,
             form: dict[str, str]) -> tuple[str, Asset, int]:
    recipient = parse_address(form["to"], "to")
    if recipient == wallet.address:
        raise InputError("to", "That is your own address; you cannot pay yourself.")
    asset = service.asset(form["asset"] or None, "asset")
    amount = asset.parse(form["amount"])

    async def spendable() -> int:
        client = await service.client(wallet)
        return (await client.balances()).get(asset.address, 0)

    balance = service.run(spendable())
    if amount > balance:
        raise InputError("amount", f"That is more than your balance ({fmt(asset, balance)}).")
    return recipient, asset, amount


@bp.get("/send")
def index() -> tuple[str, int]:
    form = _with_request_link(_form(http.args))
    return _page("send.html", form=form, prefilled=bool(http.args.get("to")))


@bp.post("/send")
def submit() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = _with_request_link(_form(http.form))
    try:
        recipient, asset, amount = validate(service, wallet, form)
    except Exception as exc:
        return _page("send.html", 422, form=form, errors=form_error(exc, "form"))
    try:
        deliver = _deliver(service, form, asset)
        swap = None
        if deliver is not None:
            quote = (service.run(_quote(service, wallet, asset, deliver, amount))
                     if http.form.get("step") != "confirm"
                     else quote_of_form(http.form.get("quote")))
            swap = QuoteView(quote, asset, deliver)
    except Exception as exc:
        return _page("send.html", 422, form=form, errors=form_error(exc, "form"))
    if http.form.get("step") != "confirm":
        return _page("send_review.html", form=dict(form, to=recipient), asset=asset,
                     amount_text=fmt(asset, amount), payment_id=new_payment_id(), swap=swap)
    payment_id = payment_id_of(http.form.get("payment_id"))

    async def pay() -> Any:
        client = await service.client(wallet)
        return await client.transfer(recipient, asset.address, amount, wait=30.0,
                                     payment_id=payment_id,
                                     quote=None if swap is None else swap.quote)

    try:
        result = service.run(pay(), timeout=45)
    except Exception as exc:
        return _page("send.html", 422, form=form, errors=form_error(exc, "form"))
    return _page("send_result.html", result=result, recipient=recipient,
                 amount_text=fmt(asset, amount), swap=swap)


def _deliver(service: WalletService, form: dict[str, str], pay: Asset) -> Asset | None:
    """The asset the recipient is to get, when it is not the one paid with."""
    if not form["deliver"]:
        return None
    deliver = service.asset(form["deliver"], "deliver")
    return None if deliver.address == pay.address else deliver


async def _quote(service: WalletService, wallet: Wallet, pay: Asset, deliver: Asset,
                 amount: int) -> Any:
    client = await service.client(wallet)
    return await client.quote(pay.address, deliver.address, amount)


@bp.get("/request")
def request() -> tuple[str, int]:
    return _page("request.html", form={"amount": "", "asset": ""})


@bp.post("/request")
def create_request() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = {k: (http.form.get(k) or "").strip() for k in ("amount", "asset")}
    try:
        asset = service.asset(form["asset"] or None, "asset")
        amount = asset.parse(form["amount"])
    except Exception as exc:
        return _page("request.html", 422, form=form, errors=form_error(exc, "form"))
    base = config().public_url.rstrip("/") or http.host_url.rstrip("/")
    query = urlencode({"to": wallet.address, "amount": asset.format(amount),
                       "asset": asset.symbol})
    link = f"{base}{url_for('send.index')}?{query}"
    try:
        view = service.run(wallet_view(service, wallet))
    except Exception as exc:
        view = {"error": explain(exc)}
    return _page("request.html", form=form, link=link, qr=qr_svg(link, scale=3),
                 amount_text=fmt(asset, amount), **view)
