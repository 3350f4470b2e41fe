"""Swaps over the JSON API, on the real stack: a wallet asks for a quote, pays TEST with it
and the other wallet receives the quote's ETH; the same quote again, an altered one and
a malformed one are refused (422, typed codes) and nothing moves."""

from __future__ import annotations

from collections.abc import Callable

from .conftest import ETHER, ApiWallet


def test_a_quote_pays_once_in_another_asset_and_bent_quotes_are_refused(
    new_wallet: Callable[[], ApiWallet],
) -> None:
    payer, recipient = new_wallet(), new_wallet()
    assert payer.post("/faucet", {"assetId": "TEST"})["balance"]["amount"] == str(100 * ETHER)
    recipient.get("")  # its channel exists
    quote = payer.post("/quotes", {"assetIn": "TEST", "assetOut": "ETH",
                                   "amountIn": str(ETHER), "ttl": 30})
    assert quote["payer"] == payer.address and int(quote["amountOut"]) > 0
    assert int(quote["amountOut"]) + int(quote["fee"]) == ETHER // 100  # 1 TEST = 0.01 ETH

    body = {"recipient": recipient.address, "assetId": "TEST", "amount": str(ETHER)}
    altered = {**quote, "amountOut": str(int(quote["amountOut"]) + 1)}
    refused = payer.post("/transfers", {**body, "quote": altered}, expect=422)["error"]
    assert (refused["code"], refused.get("field")) == ("quote_altered", "quote")
    malformed = payer.post("/transfers", {**body, "quote": {"quoteId": "0x00"}},
                           expect=422)["error"]
    assert (malformed["code"], malformed.get("field")) == ("invalid_input", "quote")
    assert payer.post("/transfers", {**body, "meta": {"quote": quote}},
                      expect=422)["error"]["code"] == "invalid_input"  # reserved meta key
    assert payer.balances()["TEST"] == 100 * ETHER

    paid = payer.post("/transfers", {**body, "quote": quote}, expect=201)
    assert paid["status"] == "completed"
    assert recipient.wait_for(lambda: recipient.balances()["ETH"] == int(quote["amountOut"]))
    assert payer.balances()["TEST"] == 99 * ETHER

    again = payer.post("/transfers", {**body, "quote": quote}, expect=422)["error"]
    assert again["code"] == "quote_used"
    assert payer.balances()["TEST"] == 99 * ETHER
    unsupported = payer.post("/quotes", {"assetIn": "TEST", "assetOut": "TEST",
                                         "amountIn": "1"}, expect=422)["error"]
    assert unsupported["code"] == "unsupported_swap"
