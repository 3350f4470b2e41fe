"""The wallet behind gunicorn (`connext web --server gunicorn`, what production runs), on
the session's chain, NATS and node: a browser's live socket is a real WebSocket, a payment
an integrator makes over the API shows on the browser's page live, the new-wallet limit
answers 429, and a stop ends the master and its one worker within seconds even with a
page's socket open (the worker closes the wallets' clients on its way out)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from playwright.sync_api import Browser, expect

from app.serving import GRACEFUL_SECONDS
from connext.devstack import WebDaemon, free_port
from tests.e2e.conftest import watch_policy
from tests.fullstack import FullStack

SLOW = 30_000  # ms
NEW_WALLETS_PER_HOUR = 3


@pytest.fixture
def gunicorn_web(stack: FullStack, tmp_path: Path) -> Iterator[WebDaemon]:
    env = {**stack.web_env(), "CONNEXT_WEB_SERVER": "gunicorn",
           "CONNEXT_WEB_DATA_DIR": str(tmp_path / "web"), "CONNEXT_WEB_THREADS": "20",
           "CONNEXT_WEB_NEW_WALLETS_PER_HOUR": str(NEW_WALLETS_PER_HOUR)}
    web = WebDaemon(env, tmp_path / "web.log", free_port()).start()
    try:
        yield web
    finally:
        web.stop()


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None,
        token: str | None = None, expect_status: int = 200) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.request(method, base + path, json=body, headers=headers, timeout=60)
    assert response.status_code == expect_status, response.text
    return response


def test_the_wallet_works_behind_gunicorn(browser: Browser, gunicorn_web: WebDaemon,
                                          tmp_path: Path) -> None:
    base = gunicorn_web.url
    assert gunicorn_web.pid is not None
    master = psutil.Process(gunicorn_web.pid)
    (worker,) = master.children()  # exactly one worker: the wallets live in its memory
    log = (tmp_path / "web.log").read_text()
    assert "Using worker: WalletWorker" in log

    context = browser.new_context(base_url=base)
    violations: list[str] = []
    watch_policy(context, violations)
    try:
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto("/")
        expect(page.get_by_test_id("balance-ETH")).to_have_text("0")
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        assert any("/socket.io/" in url and "transport=websocket" in url for url in sockets)
        address = page.locator("body").get_attribute("data-address")
        (session,) = [c for c in context.cookies() if c["name"] == "session"]
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        assert not session["secure"]  # plain HTTP here

        # an integrator pays the browser's wallet over the API: its page shows it live
        payer = api(base, "POST", "/api/v1/wallets", {}, expect_status=201).json()
        payer_url = f"/api/v1/wallets/{payer['address']}"
        api(base, "POST", f"{payer_url}/faucet", {"assetId": "ETH"}, token=payer["token"])
        api(base, "POST", f"{payer_url}/transfers", {
            "recipient": address, "assetId": "ETH", "amount": str(25 * 10**16)},
            token=payer["token"], expect_status=201)
        expect(page.get_by_test_id("balance-ETH")).to_have_text("0.25", timeout=SLOW)

        # the browser's wallet and the payer's were two; one more, then the limit
        api(base, "POST", "/api/v1/wallets", {}, expect_status=201)
        refused = api(base, "POST", "/api/v1/wallets", {}, expect_status=429)
        assert refused.json()["error"]["code"] == "too_many_wallets"
        assert re.fullmatch(r"\d+", refused.headers["Retry-After"])

        # a stop, with the page's socket still open, ends the master and its worker
        started = time.monotonic()
        gunicorn_web.stop()
        stopped_in = time.monotonic() - started
        assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
        # the open socket did not hold the stop for the whole grace period (it never ends)
        assert stopped_in < GRACEFUL_SECONDS, f"gunicorn took {stopped_in:.1f} s to stop"
        log = (tmp_path / "web.log").read_text()
        assert "Worker exiting" in log and "Traceback" not in log
        assert violations == []
    finally:
        context.close()
