"""Leaving without the node over HTTP: force-close, then exit after the dispute window.

This module runs its own stack: it moves the chain's clock by a day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from eth_account import Account
from web3 import Web3

from tests.fullstack import FullStack

from .conftest import ETHER, ApiWallet

DAY = 86_400


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    with FullStack(tmp_path_factory.mktemp("api-force-close")) as running:
        yield running


@pytest.fixture(scope="module")
def web_url(stack: FullStack) -> str:
    return str(stack.web_url).rstrip("/")


def error_code(response: dict[str, object]) -> object:
    error = response["error"]
    assert isinstance(error, dict) and error.get("message")
    return error["code"]


def test_an_integrator_force_closes_and_exits_over_http(
        funded_wallet: Callable[[], ApiWallet], new_wallet: Callable[[], ApiWallet],
        stack: FullStack) -> None:
    wallet, friend = funded_wallet(), new_wallet()
    paid = wallet.post("/transfers", {"recipient": friend.address, "assetId": "ETH",
                                      "amount": str(ETHER // 4)}, expect=201)
    assert paid["status"] == "completed"

    assert error_code(wallet.post("/exit", None, expect=409)) == "not_disputed"
    dispute = wallet.post("/force-close", None)
    nonce = int(wallet.get("/channel")["state"]["nonce"])
    assert dispute["nonce"] == nonce and dispute["transactionHash"]
    again = wallet.post("/force-close", None)
    assert again["nonce"] == nonce and again["transactionHash"] is None
    assert error_code(wallet.post("/exit", None, expect=409)) == "dispute_window_open"
    refused = wallet.post("/transfers", {"recipient": friend.address, "assetId": "ETH",
                                         "amount": "1"}, expect=409)
    assert error_code(refused) == "channel_disputed"

    stack.anvil.increase_time(DAY + 60)
    stack.anvil.mine()
    bad = wallet.post("/exit", {"recipient": "0x1234"}, expect=422)
    assert error_code(bad) == "invalid_address"
    cold = Account.create().address
    out = wallet.post("/exit", {"recipient": cold})
    assert out == {"paidOut": {"0x" + "00" * 20: str(ETHER * 3 // 4)}, "waiting": {},
                   "done": True}
    assert Web3(Web3.HTTPProvider(stack.chain_url)).eth.get_balance(cold) == ETHER * 3 // 4
    assert wallet.post("/exit", None)["paidOut"] == {}
