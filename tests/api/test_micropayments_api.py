"""Streams and oracle payments over the JSON API, against the real stack: a stream paid
voucher by voucher and settled to the wei on both sides, a voucher above the budget
refused, an oracle payment claimed with the demo oracle's receipt, a forged receipt
refused with nothing moved."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

from connext.protocol.serialization import hexb
from tests.fullstack import FullStack

from .conftest import ETHER, ApiWallet

GWEI = 10**9  # the node routes payments of at least a gwei
VOUCHER = 3 * GWEI
BUDGET = 200 * GWEI


def ask_oracle(stack: FullStack, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{stack.oracle_url}{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_stream_of_fifty_vouchers_settles_to_the_wei_on_both_sides(
        new_wallet: Callable[[], ApiWallet], funded_wallet: Callable[[], ApiWallet]) -> None:
    payer, payee = funded_wallet(), new_wallet()
    stream = payer.post("/streams", {"recipient": payee.address, "assetId": "ETH",
                                     "budget": str(BUDGET), "timeoutSeconds": 7200},
                        expect=201)
    assert (stream["direction"], stream["counterparty"], stream["budget"], stream["streamed"],
            stream["status"]) == ("outgoing", payee.address, str(BUDGET),
                                  "0", "open")
    url = f"/streams/{stream['streamId']}"

    paid = payer.post(f"{url}/pay", {"amount": str(VOUCHER), "count": 50})
    assert (paid["streamed"], paid["left"]) == (str(50 * VOUCHER), str(BUDGET - 50 * VOUCHER))
    incoming = payee.wait_for(lambda: [s for s in payee.get("/streams")["streams"]
                                       if s["streamId"] == stream["streamId"]])[0]
    assert (incoming["direction"], incoming["counterparty"], incoming["streamed"]) == (
        "incoming", payer.address, str(50 * VOUCHER))

    # more than what is left of the budget: refused whole, nothing signed
    above = payer.post(f"{url}/pay", {"amount": str(BUDGET), "count": 1}, expect=422)
    assert (above["error"]["code"], above["error"].get("field")) == (
        "voucher_above_budget", "amount")
    assert payer.post(f"{url}/pay", {"amount": str(VOUCHER), "count": 10_000},
                      expect=422)["error"]["code"] == "invalid_input"

    closed = payer.post(f"{url}/close", None)
    assert closed == {"streamId": stream["streamId"], "status": "completed",
                      "streamed": str(50 * VOUCHER)}
    assert payer.eth() == ETHER - 50 * VOUCHER  # the payer loses exactly what it streamed
    payee.wait_for(lambda: payee.eth() == 50 * VOUCHER)  # and the payee gains it
    assert payer.post(f"{url}/pay", {"amount": "1"}, expect=404)["error"]["code"] == \
        "unknown_stream"
    assert payer.post(f"{url}/close", {}, expect=404)["error"]["code"] == "unknown_stream"


def test_stream_requests_are_checked_before_anything_is_locked(
        new_wallet: Callable[[], ApiWallet], funded_wallet: Callable[[], ApiWallet]) -> None:
    payer, payee = funded_wallet(), new_wallet()
    good = {"recipient": payee.address, "assetId": "ETH", "budget": str(BUDGET)}
    for body, code, field in [
            ({**good, "budget": str(2 * ETHER)}, "insufficient_balance", "budget"),
            ({**good, "recipient": payer.address}, "transfer_to_self", "recipient"),
            ({**good, "budget": "1.5"}, "invalid_amount", "budget"),
            ({**good, "timeoutSeconds": 5}, "invalid_input", "timeoutSeconds"),
            ({**good, "timeout": 600}, "unknown_field", "timeout")]:
        error = payer.post("/streams", body, expect=422)["error"]
        assert (error["code"], error.get("field")) == (code, field), error
    assert payer.post("/streams/0x1234/pay", {"amount": "1"}, expect=422)["error"][
        "code"] == "invalid_hex"
    assert payer.get("/streams") == {"streams": []}
    assert payer.eth() == ETHER


def test_an_oracle_payment_is_claimed_with_the_oracles_receipt_and_a_forged_one_moves_nothing(
        stack: FullStack, new_wallet: Callable[[], ApiWallet],
        funded_wallet: Callable[[], ApiWallet]) -> None:
    payer, payee = funded_wallet(), new_wallet()
    oracle = ask_oracle(stack, "/")["address"]
    question, amount = os.urandom(32), 1234 * GWEI
    sent = payer.post("/oracle-payments", {
        "recipient": payee.address, "assetId": "ETH", "amount": str(amount),
        "oracle": oracle, "oraclePaymentId": hexb(question), "timeoutSeconds": 7200},
        expect=201)
    assert sent["status"] in ("pending", "completed")
    (waiting,) = payee.wait_for(lambda: payee.get("/oracle-payments")["oraclePayments"])
    assert (waiting["direction"], waiting["counterparty"], waiting["amount"],
            waiting["oracle"], waiting["oraclePaymentId"]) == (
        "incoming", payer.address, str(amount), oracle, hexb(question))
    (outgoing,) = payer.get("/oracle-payments")["oraclePayments"]
    assert outgoing["direction"] == "outgoing"
    claim = f"/oracle-payments/{waiting['transferId']}/claim"

    outcome = os.urandom(32)
    receipt = ask_oracle(stack, "/receipts", {"paymentId": hexb(question),
                                              "data": hexb(outcome)})["signature"]
    other = ask_oracle(stack, "/receipts", {"paymentId": hexb(question),
                                            "data": hexb(os.urandom(32))})["signature"]
    forged = payee.post(claim, {"data": hexb(outcome), "signature": other}, expect=422)
    assert (forged["error"]["code"], forged["error"].get("field")) == (
        "invalid_transfer_resolver", "signature")
    assert (payer.eth(), payee.eth()) == (ETHER - amount, 0)  # locked, nothing moved
    assert len(payee.get("/oracle-payments")["oraclePayments"]) == 1
    stranger = payer.post(claim, {"data": hexb(outcome), "signature": receipt}, expect=404)
    assert stranger["error"]["code"] == "unknown_transfer"

    claimed = payee.post(claim, {"data": hexb(outcome), "signature": receipt})
    assert claimed == {"transferId": waiting["transferId"], "status": "claimed",
                       "received": str(amount)}
    assert payee.eth() == amount
    payer.wait_for(lambda: payer.get("/oracle-payments")["oraclePayments"] == [])
    assert payer.eth() == ETHER - amount
