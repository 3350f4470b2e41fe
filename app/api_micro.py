"""Streams and oracle payments in the JSON API: the routes under /api/v1/wallets/{address}/
streams and .../oracle-payments.

The work lives in `MicroPayments` (app/micropay.py), the same class the wallet's Streams
and Oracle screens call; these views only check what the integrator sent, call it and
describe the result. A stream is paid synchronously here (`pay_stream`: the call returns
once the recipient stored every voucher), never in the background.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from connext.protocol.serialization import hexb

from . import api_models as models
from .api import (
    WALLET,
    api_payment_id,
    asset_of,
    bytes32_in_path,
    check_balance,
    not_to_self,
    route,
)
from .api_input import ApiError
from .micropay import OraclePayment, StreamRow
from .views.common import micro, wallets
from .wallets import Wallet


def _stream(row: StreamRow) -> dict[str, Any]:
    return {"streamId": row.stream_id, "direction": "outgoing" if row.outgoing else "incoming",
            "counterparty": row.counterparty, "assetId": row.asset.address,
            "symbol": row.asset.symbol, "budget": str(row.budget),
            "streamed": str(row.streamed), "left": str(row.left), "vouchers": row.vouchers,
            "status": row.status, "expiry": row.expiry}


def _own_stream(wallet: Wallet, stream_id: str) -> StreamRow:
    for row in micro().streams(wallet):
        if row.stream_id == stream_id and row.status in ("open", "streaming"):
            return row
    raise ApiError(404, "unknown_stream", "This wallet has no open stream with that id.",
                   "streamId")


async def _check_funds(wallet: Wallet, asset: Any, amount: int, field: str) -> None:
    await check_balance(await wallets().client(wallet), asset, amount, field)


# --- streams ----------------------------------------------------------------------------------


@route(f"{WALLET}/streams", "POST", "openStream",
       (201, models.Stream, "The stream, open: pay it with /pay, settle it with /close"),
       errors=(409,))
def open_stream(wallet: Wallet, json: models.StreamRequest) -> tuple[Response, int]:
    """Open a stream to another wallet: its budget locked once, through the node

    Each payment into it is then one voucher (no channel update); either side closes it,
    which pays the recipient the highest voucher and gives the payer the rest back.
    """
    recipient = not_to_self(wallet, json.recipient)
    asset = asset_of(json.asset_id)
    wallets().run(_check_funds(wallet, asset, json.budget, "budget"))
    row = micro().open_stream(wallet, recipient, asset, json.budget,
                              timeout=json.timeout_seconds or 3600,
                              payment_id=api_payment_id(json.payment_id))
    return jsonify(_stream(row)), 201


@route(f"{WALLET}/streams", "GET", "listStreams",
       (200, models.Streams, "The wallet's streams"))
def list_streams(wallet: Wallet) -> Response:
    """The wallet's streams, both ways"""
    return jsonify({"streams": [_stream(row) for row in micro().streams(wallet)]})


@route(f"{WALLET}/streams/<streamId>/pay", "POST", "payStream",
       (200, models.Stream, "The stream after the vouchers"), errors=(409,))
def pay_stream(wallet: Wallet, streamId: str, json: models.StreamPayRequest) -> Response:
    """Pay vouchers into a stream this wallet pays

    Signs `count` vouchers (default 1), each `amount` more than the last, and returns once
    the recipient stored them all. 422 `voucher_above_budget` (nothing sent) when what is
    left of the budget does not cover them; 409 `stream_busy` while the wallet's screen
    streams it in the background.
    """
    stream_id = bytes32_in_path(streamId, "streamId")
    if micro().is_streaming(wallet, hexb(stream_id)):
        raise ApiError(409, "stream_busy", "This stream is paying in the background (from "
                                           "the wallet's screen); stop it there first.")
    row = micro().pay_stream(wallet, stream_id, json.amount, json.count or 1)
    return jsonify(_stream(row))


@route(f"{WALLET}/streams/<streamId>/close", "POST", "closeStream",
       (200, models.StreamClosed, "Closed and settled on both hops"), errors=(409,),
       body_required=False)
def close_stream(wallet: Wallet, streamId: str, json: models.EmptyRequest) -> Response:
    """Close a stream, from either side

    Settles it with the highest voucher: the recipient gets that much, the payer the rest
    of the budget.
    """
    stream_id = bytes32_in_path(streamId, "streamId")
    row = _own_stream(wallet, hexb(stream_id))
    status = micro().close_stream(wallet, stream_id)
    return jsonify({"streamId": row.stream_id, "status": status,
                    "streamed": str(row.streamed if status == "completed" else 0)})


# --- oracle payments --------------------------------------------------------------------------


def _oracle_payment(row: OraclePayment) -> dict[str, Any]:
    return {"transferId": row.transfer_id,
            "direction": "outgoing" if row.outgoing else "incoming",
            "counterparty": row.counterparty, "assetId": row.asset.address,
            "symbol": row.asset.symbol, "amount": str(row.amount), "oracle": row.oracle,
            "oraclePaymentId": row.payment_id, "expiry": row.expiry}


@route(f"{WALLET}/oracle-payments", "POST", "payOnOracle",
       (201, models.PaymentResult, "The payment, pending until the recipient claims it"),
       errors=(409,))
def pay_on_oracle(wallet: Wallet, json: models.OraclePaymentRequest) -> tuple[Response, int]:
    """Pay another wallet once an oracle signs a receipt

    The amount is locked through the node until the recipient claims it with the oracle's
    receipt for `oraclePaymentId`, or refunded on both hops after `timeoutSeconds`.
    """
    recipient = not_to_self(wallet, json.recipient)
    asset = asset_of(json.asset_id)
    wallets().run(_check_funds(wallet, asset, json.amount, "amount"))
    result = micro().pay_on_oracle(wallet, recipient, asset, json.amount, json.oracle,
                                   json.oracle_payment_id,
                                   timeout=json.timeout_seconds or 3600,
                                   payment_id=api_payment_id(json.payment_id))
    return jsonify({"transferId": hexb(result.transfer_id),
                    "routingId": hexb(result.routing_id), "status": result.status}), 201


@route(f"{WALLET}/oracle-payments", "GET", "listOraclePayments",
       (200, models.OraclePayments, "The oracle payments still waiting"))
def list_oracle_payments(wallet: Wallet) -> Response:
    """The wallet's oracle payments still waiting for a receipt, both ways"""
    return jsonify({"oraclePayments": [_oracle_payment(row)
                                       for row in micro().oracle_payments(wallet)]})


@route(f"{WALLET}/oracle-payments/<transferId>/claim", "POST", "claimOraclePayment",
       (200, models.ClaimResult, "Claimed"), errors=(409,))
def claim_oracle_payment(wallet: Wallet, transferId: str,
                         json: models.ClaimRequest) -> Response:
    """Claim an oracle payment to this wallet with the oracle's receipt

    422 `invalid_transfer_resolver` (nothing moves) for a receipt of another signer or
    for another outcome.
    """
    tid = bytes32_in_path(transferId, "transferId")
    if not any(row.transfer_id == hexb(tid) and not row.outgoing
               for row in micro().oracle_payments(wallet)):
        raise ApiError(404, "unknown_transfer", "No oracle payment with that id waits for "
                                                "this wallet.", "transferId")
    received = micro().claim_oracle_payment(wallet, tid, json.data, json.signature)
    return jsonify({"transferId": hexb(tid), "status": "claimed", "received": str(received)})
