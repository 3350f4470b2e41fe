"""Streams: open one (a budget locked once), pay it voucher by voucher, watch, close.

A stream's counters (vouchers, amount streamed, budget left, vouchers per second) refresh
live: on the recipient's side with every batch of vouchers it stores, on the payer's side
every second while it streams. Closing, from either side, settles both hops with the
highest voucher; the rest of the budget goes back to the payer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from connext.protocol.serialization import MalformedData, parse_bytes

from ..assets import InputError, parse_address
from ..micropay import StreamRow
from .common import current_wallet, explain, fmt, form_error, micro, wallets
from .send import new_payment_id, payment_id_of

bp = Blueprint("streams", __name__)
MAX_VOUCHERS = 100_000
"""Vouchers one "Stream" press may send."""


def _stream_id(value: str) -> bytes:
    try:
        return parse_bytes(value, "stream", 32)
    except MalformedData:
        raise InputError("form", "That is not a stream id.") from None


def _form(source: Any) -> dict[str, str]:
    return {k: (source.get(k) or "").strip() for k in ("to", "budget", "asset", "minutes")}


def _rows() -> tuple[list[StreamRow], str | None]:
    try:
        return micro().streams(current_wallet()), None
    except Exception as exc:
        return [], explain(exc)


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    rows, error = _rows()
    try:
        assets = list(wallets().assets().values())
    except Exception as exc:
        assets, error = [], explain(exc)
    context.setdefault("form", {"to": "", "budget": "", "asset": "", "minutes": "60"})
    context.setdefault("payment_id", new_payment_id())
    return render_template("streams.html", rows=rows, assets=assets, fmt=fmt, explain=explain,
                           **({"error": error} if error else {}), **context), status


@bp.get("/streams")
def index() -> tuple[str, int]:
    return _page()


@bp.get("/streams/live")
def live() -> tuple[str, int]:
    rows, error = _rows()
    return render_template("partials/streams_list.html", rows=rows, fmt=fmt, explain=explain,
                           **({"error": error} if error else {})), 200


@bp.post("/streams")
def open_stream() -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    form = _form(request.form)
    try:
        recipient = parse_address(form["to"], "to")
        asset = service.asset(form["asset"] or None, "asset")
        budget = asset.parse(form["budget"], "budget")
        minutes = _minutes(form["minutes"])
        row = micro().open_stream(wallet, recipient, asset, budget, timeout=minutes * 60,
                                  payment_id=payment_id_of(request.form.get("payment_id")))
    except Exception as exc:
        return _page(422, form=form, errors=form_error(exc, "form"),
                     payment_id=request.form.get("payment_id") or new_payment_id())
    return _page(note=f"Stream open: {fmt(row.asset, row.budget)} locked for "
                      f"{row.counterparty[:10]}…; pay it voucher by voucher below.")


def _minutes(text: str) -> int:
    if not text:
        return 60
    if not text.isdigit() or not 1 <= int(text) <= 7 * 24 * 60:
        raise InputError("minutes", "Enter the minutes the stream stays open: a whole "
                                    "number from 1 to 10080 (a week).")
    return int(text)


@bp.post("/streams/<stream>/pay")
def pay(stream: str) -> tuple[str, int]:
    wallet = current_wallet()
    try:
        stream_id = _stream_id(stream)
        row = _row(stream)
        each = row.asset.parse(request.form.get("each"), "each")
        count = _whole(request.form.get("count"), "count", 1, MAX_VOUCHERS,
                       "the number of vouchers")
        pace = request.form.get("per_second") or "0"
        per_second = _whole(pace, "per_second", 0, 100_000, "vouchers per second (0: as fast "
                                                            "as the recipient takes them)")
        micro().start_streaming(wallet, stream_id, each, count, per_second)
    except Exception as exc:
        return _page(422, errors={f"{stream}:{k}": v for k, v in
                                  form_error(exc, "form").items()})
    return _page(note=f"Streaming {count} vouchers of {fmt(row.asset, each)}.")


def _row(stream: str) -> StreamRow:
    for row in micro().streams(current_wallet()):
        if row.stream_id == stream and row.status in ("open", "streaming"):
            return row
    raise InputError("form", "This wallet has no open stream with that id.")


def _whole(text: str | None, field: str, low: int, high: int, what: str) -> int:
    raw = (text or "").strip()
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InputError(field, f"Enter {what}: a whole number from {low} to {high:,}.")
    return int(raw)


@bp.post("/streams/<stream>/stop")
def stop(stream: str) -> tuple[str, int]:
    try:
        stopped = micro().stop_streaming(current_wallet(), _stream_id(stream))
    except Exception as exc:
        return _page(422, errors={f"{stream}:form": explain(exc)})
    return _page(note="Streaming stopped." if stopped else "The stream was not paying.")


@bp.post("/streams/<stream>/close")
def close(stream: str) -> tuple[str, int]:
    wallet = current_wallet()
    try:
        row = _row(stream)
        status = micro().close_stream(wallet, _stream_id(stream))
    except Exception as exc:
        return _page(422, errors={f"{stream}:form": explain(exc)})
    if status == "completed":
        note = (f"Stream settled: {fmt(row.asset, row.streamed)} "
                f"{'paid' if row.outgoing else 'received'}; the rest of the budget went back "
                "to the payer.")
    else:
        note = "Stream closed with nothing streamed: the whole budget went back."
    return _page(note=note)
