"""Oracle payments: pay someone once an oracle confirms an outcome, or claim one paying you.

The payer names the oracle (by default the local stack's demo oracle) and what it must
confirm (a payment id: a short text or 32 bytes); the money is locked through the node and
refunded on both hops if nobody claims it before it expires. The recipient claims with the
oracle's receipt: its signature over (payment id, outcome). Here the demo oracle can be
asked for one; any other oracle's receipt is pasted in. A receipt of another signer or for
another outcome is refused before anything is sent.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from connext.protocol.serialization import MalformedData, hexb, parse_bytes

from ..assets import InputError, parse_address
from ..micropay import bytes32_of, new_oracle_payment_id, text_of
from .common import current_wallet, explain, fmt, form_error, micro, wallets
from .send import new_payment_id, payment_id_of

bp = Blueprint("oracle", __name__)
FIELDS = ("to", "amount", "asset", "oracle", "question", "minutes")


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    error = None
    demo = micro().demo_oracle()
    try:
        assets = list(service.assets().values())
        rows = micro().oracle_payments(wallet)
    except Exception as exc:
        assets, rows, error = [], [], explain(exc)
    context.setdefault("form", {"to": "", "amount": "", "asset": "", "oracle": demo or "",
                                "question": new_oracle_payment_id(), "minutes": "60"})
    context.setdefault("payment_id", new_payment_id())
    claims = {row.transfer_id: {"outcome": kept[0], "signature": kept[1], "asked": True}
              for row in rows if (kept := micro().receipt(wallet, row.transfer_id))}
    claims.update(context.pop("claims", {}))
    return render_template("oracle.html", assets=assets, rows=rows, demo_oracle=demo,
                           fmt=fmt, text_of=_text, claims=claims,
                           **({"error": error} if error and "error" not in context else {}),
                           **context), status


def _text(value: str) -> str:
    return text_of(bytes.fromhex(value[2:]))


def _minutes(text: str) -> int:
    if not text:
        return 60
    if not text.isdigit() or not 1 <= int(text) <= 7 * 24 * 60:
        raise InputError("minutes", "Enter the minutes until it is refunded: a whole number "
                                    "from 1 to 10080 (a week).")
    return int(text)


@bp.get("/oracle")
def index() -> tuple[str, int]:
    return _page()


@bp.post("/oracle")
def pay() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = {k: (request.form.get(k) or "").strip() for k in FIELDS}
    try:
        recipient = parse_address(form["to"], "to")
        asset = service.asset(form["asset"] or None, "asset")
        amount = asset.parse(form["amount"])
        oracle = parse_address(form["oracle"], "oracle")
        question = bytes32_of(form["question"], "question")
        minutes = _minutes(form["minutes"])
        result = micro().pay_on_oracle(
            wallet, recipient, asset, amount, oracle, question, timeout=minutes * 60,
            payment_id=payment_id_of(request.form.get("payment_id")))
    except Exception as exc:
        return _page(422, form=form, errors=form_error(exc, "form"),
                     payment_id=request.form.get("payment_id") or new_payment_id())
    status = "locked for the recipient" if result.status != "pending" else "being sent"
    return _page(note=f"{fmt(asset, amount)} {status}: paid once {oracle[:10]}… confirms "
                      f"“{text_of(question)}”, refunded in {minutes} minutes otherwise.")


def _transfer_id(value: str) -> bytes:
    try:
        return parse_bytes(value, "transfer", 32)
    except MalformedData:
        raise InputError("form", "That is not a payment id.") from None


def _receipt_form() -> dict[str, str]:
    return {k: (request.form.get(k) or "").strip() for k in ("outcome", "signature")}


@bp.post("/oracle/<transfer>/ask")
def ask(transfer: str) -> tuple[str, int]:
    """Ask the demo oracle to sign the outcome typed in (a demo: a real oracle decides)."""
    form = _receipt_form()
    try:
        row = _incoming(transfer)
        outcome = bytes32_of(form["outcome"], "outcome")
        signature = micro().ask_demo_oracle(bytes.fromhex(row.payment_id[2:]), outcome)
    except Exception as exc:
        return _claim_failed(transfer, form, exc)
    micro().keep_receipt(current_wallet(), transfer, form["outcome"], hexb(signature))
    return _page()


@bp.post("/oracle/<transfer>/claim")
def claim(transfer: str) -> tuple[str, int]:
    form = _receipt_form()
    try:
        row = _incoming(transfer)
        outcome = bytes32_of(form["outcome"], "outcome")
        try:
            signature = parse_bytes(form["signature"], "signature", 65)
        except MalformedData:
            raise InputError("signature", "A receipt is 0x and 130 hex digits (the oracle's "
                                          "signature).") from None
        received = micro().claim_oracle_payment(current_wallet(), _transfer_id(transfer),
                                                outcome, signature)
    except Exception as exc:
        return _claim_failed(transfer, form, exc)
    micro().forget_receipt(current_wallet(), transfer)
    return _page(note=f"Claimed: {fmt(row.asset, received)} received.")


def _incoming(transfer: str) -> Any:
    for row in micro().oracle_payments(current_wallet()):
        if row.transfer_id == transfer and not row.outgoing:
            return row
    raise InputError("form", "That payment is no longer waiting (it was claimed or "
                             "refunded).")


def _claim_failed(transfer: str, form: dict[str, str], exc: BaseException) -> tuple[str, int]:
    """Show the error on the payment's card, or above the list once the card is gone."""
    if any(row.transfer_id == transfer for row in micro().oracle_payments(current_wallet())):
        return _page(422, claims={transfer: {**form, "errors": _keyed(exc)}})
    return _page(422, error=explain(exc))


def _keyed(exc: BaseException) -> dict[str, str]:
    errors = form_error(exc, "form")
    if getattr(exc, "code", None) == "invalid_transfer_resolver":
        errors = {"signature": errors.pop("form", explain(exc))}
    return errors
