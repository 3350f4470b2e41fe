"""Fixtures of the API tests that need the real stack: one `FullStack` (anvil, nats-server,
node, `connext web`, on free ports) for the session, and wallets driven over HTTP.

Tests that need no stack (test_input.py, test_offline.py, test_openapi.py) never touch
these fixtures, so they run without starting anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import requests
from web3 import Web3

from connext.chain.contracts import Sender, connect
from connext.chain.deploy import mint_test_token
from tests.fullstack import FullStack

T = TypeVar("T")
ETHER = 10**18


@pytest.fixture(scope="session")
def stack(full_stack: FullStack) -> FullStack:
    """The session's stack (tests/conftest.py), started only if an API test needs it."""
    return full_stack


@pytest.fixture(scope="session")
def web_url(stack: FullStack) -> str:
    return str(stack.web_url).rstrip("/")


@dataclass
class ApiWallet:
    """A wallet as an integrator sees it: its address, its token, HTTP calls."""

    base: str
    address: str
    channel_address: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/wallets/{self.address}{path}"

    def get(self, path: str, expect: int = 200) -> Any:
        response = self.session.get(self.url(path), headers=self.headers, timeout=60)
        assert response.status_code == expect, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None, expect: int = 200) -> Any:
        response = self.session.post(self.url(path), json=body, headers=self.headers,
                                     timeout=120)
        assert response.status_code == expect, response.text
        return response.json()

    def balances(self) -> dict[str, int]:
        return {b["symbol"]: int(b["amount"]) for b in self.get("/balances")["balances"]}

    def eth(self) -> int:
        return self.balances()["ETH"]

    def wait_for(self, check: Callable[[], T], timeout: float = 30.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                assert value, "timed out waiting"
                return value
            time.sleep(0.1)


def create_wallet(base: str) -> ApiWallet:
    response = requests.post(f"{base}/api/v1/wallets", json={"label": "tests"}, timeout=60)
    assert response.status_code == 201, response.text
    body = response.json()
    return ApiWallet(base, body["address"], body["channelAddress"], body["token"])


@pytest.fixture
def new_wallet(web_url: str) -> Callable[[], ApiWallet]:
    return lambda: create_wallet(web_url)


@pytest.fixture
def funded_wallet(web_url: str) -> Callable[[], ApiWallet]:
    """A new wallet holding exactly 1 ETH, from the faucet route."""

    def make() -> ApiWallet:
        wallet = create_wallet(web_url)
        funded = wallet.post("/faucet", {"assetId": "ETH"})
        assert funded["balance"]["amount"] == str(ETHER)
        return wallet

    return make


@pytest.fixture
def browser_wallet(web_url: str) -> Callable[[], tuple[ApiWallet, Callable[[], None]]]:
    """A wallet made by a browser session, with a token from its Settings page; returns
    the wallet and a function that revokes the token on that page."""

    def make() -> tuple[ApiWallet, Callable[[], None]]:
        browser = requests.Session()
        page = browser.get(f"{web_url}/settings", timeout=60).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        address = re.search(r'data-address="(0x[0-9a-fA-F]{40})"', page)
        assert csrf and address
        made = browser.post(f"{web_url}/settings/tokens", timeout=60,
                            data={"csrf_token": csrf.group(1), "label": "api test"}).text
        token = re.search(r'data-testid="new-token">([^<]+)<', made)
        assert token, made
        info = requests.get(f"{web_url}/api/v1/wallets/{address.group(1)}", timeout=60,
                            headers={"Authorization": f"Bearer {token.group(1)}"}).json()
        wallet = ApiWallet(web_url, address.group(1), info["channelAddress"], token.group(1))

        def revoke() -> None:
            done = browser.post(f"{web_url}/settings/tokens/revoke", timeout=60,
                                data={"csrf_token": csrf.group(1),
                                      "prefix": wallet.token[:12]})
            assert done.status_code == 200 and "revoked" in done.text

        return wallet, revoke

    return make


@pytest.fixture
def signed_definition(stack: FullStack) -> str:
    assert stack.deployment is not None
    return str(stack.deployment.definitions["Signed"])


@pytest.fixture
def chain_balance(stack: FullStack) -> Callable[[str], int]:
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    return lambda address: int(w3.eth.get_balance(Web3.to_checksum_address(address)))


@pytest.fixture
def send_to(stack: FullStack) -> Callable[[str, str, int], None]:
    """Someone else sends ETH (or mints TEST) straight to an address on chain."""
    key = stack.anvil.private_keys[7]  # not the faucet's or the node's account

    def send(asset: str, to: str, amount: int) -> None:
        if asset == "ETH":
            Sender(connect(stack.chain_url), key).send_eth(to, amount)
        else:
            assert stack.deployment is not None and stack.deployment.test_token is not None
            token = stack.deployment.test_token
            mint_test_token(stack.chain_url, key, token, to, amount)

    return send
