"""Cash out: move funds from the channel to any address on chain (the node pays the gas).

The withdrawal is a Withdraw transfer in the channel; once the node countersigns, it
submits the double-signed commitment on chain. The page shows the transaction as it
confirms; a withdrawal still pending confirms live through the wallet's event stream.
Cash out can deliver another asset: the wallet swaps the amount in its own channel at the
node's quote first (`Client.swap`), then withdraws what the quote pays out.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from connext.chain.contracts import connect

from ..assets import InputError, parse_address
from ..swaps import QuoteView
from .common import current_wallet, explain, fmt, form_error, wallets
from .home import wallet_view

bp = Blueprint("withdraw", __name__)


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    try:
        view = service.run(wallet_view(service, wallet))
        assets = list(service.assets().values())
    except Exception as exc:
        return render_template("withdraw.html", error=explain(exc), **context), status
    return render_template("withdraw.html", assets=assets,
                           deliverable=service.swaps.deliverable(assets), **view,
                           **context), status


@bp.get("/withdraw")
def index() -> tuple[str, int]:
    return _page(form={"to": "", "amount": "", "asset": ""})


@bp.post("/withdraw")
def submit() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = {k: (request.form.get(k) or "").strip()
            for k in ("to", "amount", "asset", "deliver")}
    swap: QuoteView | None = None
    try:
        recipient = parse_address(form["to"], "to")
        asset = service.asset(form["asset"] or None, "asset")
        amount = asset.parse(form["amount"])
        deliver = service.asset(form["deliver"], "deliver") if form["deliver"] else asset

        async def cash_out() -> Any:
            nonlocal swap
            client = await service.client(wallet)
            balance = (await client.balances()).get(asset.address, 0)
            if amount > balance:
                raise InputError("amount",
                                 f"That is more than your balance ({fmt(asset, balance)}).")
            if deliver.address == asset.address:
                return await client.withdraw(recipient, asset.address, amount, wait=60.0)
            quote = await client.quote(asset.address, deliver.address, amount)
            swap = QuoteView(quote, asset, deliver)
            swapped = await client.swap(quote, wait=30.0)
            if swapped.status != "completed":
                raise InputError("form", "The swap did not complete; your funds are in your "
                                         "balance (see Activity).")
            return await client.withdraw(recipient, deliver.address, quote.amount_out,
                                         wait=60.0)

        result = service.run(cash_out(), timeout=120)
    except Exception as exc:
        return _page(422, form=form, errors=form_error(exc, "form"))
    block = None
    if result.transaction_hash:
        receipt = connect(service.config.chain_url).eth.get_transaction_receipt(
            result.transaction_hash)
        block = receipt["blockNumber"] if receipt else None
    paid_out = fmt(asset, amount) if swap is None else swap.deliver_text
    return _page(form={"to": "", "amount": "", "asset": form["asset"], "deliver": ""},
                 result=result, block=block, recipient=recipient, amount_text=paid_out,
                 swap=swap)
