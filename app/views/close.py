"""Leaving without the node, from the channel inspector: force-close, then exit.

Force-close disputes the wallet's latest co-signed state on chain from the wallet's own
account (on the local chain the faucet gives it gas first). After the channel's dispute
window, Exit sends everything the channel owes the wallet to an address; a payment still
locked in the channel waits for its own window, and Exit is pressed again.
"""

from __future__ import annotations

from flask import Blueprint, request

from connext.protocol.types import Address

from ..assets import InputError, parse_address
from .common import current_wallet, fmt, form_error, wallets
from .home import inspector_page

bp = Blueprint("close", __name__)


@bp.post("/channel/force-close")
def force_close() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    try:
        if request.form.get("confirm") != "yes":
            raise InputError("confirm", "Tick the box to confirm: the channel closes for good.")
        result = service.force_close(wallet)
    except Exception as exc:
        return inspector_page(422, close_errors=form_error(exc, "confirm"))
    return inspector_page(disputed=result)


@bp.post("/channel/exit")
def exit_channel() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    to = (request.form.get("to") or "").strip()
    try:
        recipient: Address = parse_address(to, "to") if to else wallet.address
        progress = service.exit_channel(wallet, recipient)
    except Exception as exc:
        return inspector_page(422, exit_errors=form_error(exc, "to"), exit_to=to)
    assets = service.assets()
    paid = [fmt(assets[a], amount) if a in assets else f"{amount} of {a}"
            for a, amount in progress.paid_out.items()]
    return inspector_page(exited={"paid": paid, "waiting": len(progress.waiting),
                                  "done": progress.done, "to": recipient})
