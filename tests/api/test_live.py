"""The JSON API against the real stack (anvil, nats-server, node, `connext web`): an
integrator in another process pays over HTTP; bad requests change nothing; conditional
transfers resolve; event streams carry only their wallet's events."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from connext.protocol.encoding import receipt_digest
from connext.protocol.serialization import hexb
from connext.protocol.signing import Signer
from connext.protocol.transfers import SIGNED

from .conftest import ApiWallet

HERE = Path(__file__).resolve().parent
ETHER = 10**18
GWEI = 10**9  # the node routes payments of at least a gwei (CONNEXT_LIMITS)
PAID = 12345 * GWEI


def test_an_integrator_in_another_process_pays_over_http(web_url: str) -> None:
    done = subprocess.run([sys.executable, str(HERE / "pay_over_http.py"), web_url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    amount = int(result["amount"])
    assert result["funded"]["credited"] == str(ETHER)
    assert result["payment"]["status"] == "completed"
    before, after = result["before"], result["after"]
    assert before == {"alice": ETHER, "bob": 0}
    assert before["alice"] - after["alice"] == amount  # exactly the amount, no more
    assert after["bob"] - before["bob"] == amount  # the local node charges no fee
    received = [e for e in result["bobHistory"]["events"] if e["event"] == "transfer.received"]
    assert [(e["data"]["amount"], e["data"]["from"]) for e in received] == [
        (str(amount), result["alice"]["address"])]


def test_bad_requests_get_clear_errors_and_change_nothing(
        web_url: str, new_wallet: Callable[[], ApiWallet],
        funded_wallet: Callable[[], ApiWallet]) -> None:
    alice, bob, mallory = funded_wallet(), new_wallet(), new_wallet()
    url = f"{web_url}/api/v1/wallets/{alice.address}/transfers"
    good = {"recipient": bob.address, "assetId": "ETH", "amount": "1000"}
    before = (alice.balances(), bob.balances())

    def refused(status: int, code: str, field: str | None = None, **kwargs: Any) -> None:
        response = requests.post(url, timeout=30, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == code, error
        assert error.get("field") == field
        assert error["message"][0].isupper() and error["message"].endswith(".")

    refused(401, "unauthorized", json=good)
    refused(401, "invalid_token", json=good, headers={"Authorization": "Bearer cxt_guess"})
    refused(403, "forbidden", json=good, headers=mallory.headers)
    auth = alice.headers
    refused(415, "unsupported_media_type", data="recipient=x", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"})
    refused(422, "invalid_json", data="{recipient: bob}", headers={
        **auth, "Content-Type": "application/json"})
    refused(422, "not_an_object", json=[good], headers=auth)
    refused(422, "missing_field", "amount",
            json={k: v for k, v in good.items() if k != "amount"}, headers=auth)
    refused(422, "invalid_address", "recipient", json={**good, "recipient": "0x1234"},
            headers=auth)
    refused(422, "invalid_address", "recipient",
            json={**good, "recipient": bob.address.swapcase().replace("0X", "0x")},
            headers=auth)
    for amount in ("1.5", "-1", "0", 1.5, "1e3", str(2**256)):
        refused(422, "invalid_amount", "amount", json={**good, "amount": amount}, headers=auth)
    refused(422, "unknown_field", "memo", json={**good, "memo": "hi"}, headers=auth)
    refused(422, "unknown_asset", "assetId", json={**good, "assetId": "DOGE"}, headers=auth)
    refused(422, "transfer_to_self", "recipient", json={**good, "recipient": alice.address},
            headers=auth)
    refused(422, "insufficient_balance", "amount", json={**good, "amount": str(10 * ETHER)},
            headers=auth)
    refused(422, "channel_not_set_up", "recipient",
            json={**good, "recipient": Signer.random().address}, headers=auth)
    nested = json.dumps({**good, "meta": {}}).replace("{}", "[" * 10_000 + "]" * 10_000)
    refused(422, "too_deeply_nested", data=nested, headers={
        **auth, "Content-Type": "application/json"})
    refused(413, "payload_too_large", data=json.dumps({**good, "meta": {"x": "y" * 70_000}}),
            headers={**auth, "Content-Type": "application/json"})

    # the server is alive and nothing moved
    assert (alice.balances(), bob.balances()) == before
    assert alice.get("/channel")["transfers"] == []


def test_a_token_made_on_the_settings_page_works_until_revoked(
        web_url: str, browser_wallet: Callable[[], tuple[ApiWallet, Callable[[], None]]]
        ) -> None:
    wallet, revoke = browser_wallet()
    assert wallet.get("")["address"] == wallet.address
    revoke()
    response = requests.get(f"{web_url}/api/v1/wallets/{wallet.address}/balances",
                            headers=wallet.headers, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"


def test_a_conditional_transfer_is_resolved_by_its_recipient(
        web_url: str, new_wallet: Callable[[], ApiWallet],
        funded_wallet: Callable[[], ApiWallet], signed_definition: str) -> None:
    payer, payee = funded_wallet(), new_wallet()
    oracle, payment_id = Signer.random(), os.urandom(32)
    sent = payer.post("/transfers/conditional", {
        "recipient": payee.address, "assetId": "ETH", "amount": str(PAID),
        "definition": "Signed", "initialState": hexb(SIGNED.encode_state(
            oracle.address, payment_id, int(time.time()) + 3600))},
        expect=201)
    assert sent["status"] == "pending"
    incoming = payee.wait_for(lambda: payee.get("/channel")["transfers"])[0]
    assert incoming["meta"]["routingId"] == sent["routingId"]
    url = f"/transfers/{incoming['transferId']}/resolve"

    data = os.urandom(32)
    signature = oracle.sign(receipt_digest(31337, signed_definition, payment_id, data))
    forged = payee.post(url, {"resolver": hexb(SIGNED.encode_resolver(os.urandom(32),
                                                                      signature))}, expect=422)
    assert forged["error"]["code"] == "invalid_transfer_resolver"
    stranger = payer.post(url.replace(incoming["transferId"], "0x" + "ab" * 32),
                          {"resolver": "0x"}, expect=404)
    assert stranger["error"]["code"] == "unknown_transfer"

    resolved = payee.post(url, {"resolver": hexb(SIGNED.encode_resolver(data, signature))})
    assert resolved == {"transferId": incoming["transferId"], "status": "resolved",
                        "received": str(PAID)}
    assert payee.eth() == PAID
    payer.wait_for(lambda: payer.eth() == ETHER - PAID)

    # a second one is declined: the payer gets it back
    payer.post("/transfers/conditional", {
        "recipient": payee.address, "assetId": "ETH", "amount": str(500 * GWEI),
        "definition": "Signed",
        "initialState": hexb(SIGNED.encode_state(oracle.address, os.urandom(32),
                                                 int(time.time()) + 3600))},
        expect=201)
    incoming = payee.wait_for(lambda: payee.get("/channel")["transfers"])[0]
    assert payee.post(f"/transfers/{incoming['transferId']}/cancel", None)["status"] == \
        "cancelled"
    payer.wait_for(lambda: payer.eth() == ETHER - PAID)


def test_a_withdrawal_is_paid_on_chain(funded_wallet: Callable[[], ApiWallet],
                                       chain_balance: Callable[[str], int]) -> None:
    wallet = funded_wallet()
    external = Signer.random().address
    result = wallet.post("/withdrawals", {"recipient": external, "assetId": "ETH",
                                          "amount": str(ETHER // 10)}, expect=201)
    assert result["status"] == "confirmed" and result["transactionHash"].startswith("0x")
    assert chain_balance(external) == ETHER // 10
    assert wallet.eth() == ETHER - ETHER // 10


class Stream:
    """A minimal SSE reader on a plain socket (HTTP/1.0, so no chunking), collecting
    (event, data) on its own thread; `close` shuts the socket down at once."""

    def __init__(self, wallet: ApiWallet) -> None:
        url = urlsplit(wallet.base)
        self.sock = socket.create_connection((url.hostname, url.port or 80), timeout=60)
        self.sock.sendall(
            f"GET /api/v1/wallets/{wallet.address}/events HTTP/1.0\r\n"
            f"Host: {url.netloc}\r\nAuthorization: Bearer {wallet.token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline().decode()
        assert " 200 " in status, status
        headers = {}
        while (line := self.file.readline().decode().strip()):
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        assert headers["content-type"].startswith("text/event-stream")
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.next()[0] == "ready"

    def _read(self) -> None:
        event, data = "message", ""
        try:
            for raw in self.file:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    data = line[len("data: "):]
                elif not line and data:
                    self.events.put((event, json.loads(data)))
                    event, data = "message", ""
        except OSError:
            pass  # closed

    def next(self, timeout: float = 30) -> tuple[str, dict[str, Any]]:
        return self.events.get(timeout=timeout)

    def until(self, name: str) -> dict[str, Any]:
        event, data = self.next()
        while event != name:
            event, data = self.next()
        return data

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        items = []
        while not self.events.empty():
            items.append(self.events.get_nowait())
        return items

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def test_event_streams_carry_only_their_own_wallets_events(
        new_wallet: Callable[[], ApiWallet], funded_wallet: Callable[[], ApiWallet]) -> None:
    alice, bob, carol = funded_wallet(), new_wallet(), new_wallet()
    streams = {name: Stream(w) for name, w in (("alice", alice), ("bob", bob),
                                               ("carol", carol))}
    try:
        paid = alice.post("/transfers", {"recipient": bob.address, "assetId": "ETH",
                                         "amount": str(777 * GWEI)}, expect=201)
        assert paid["status"] == "completed"
        data = streams["bob"].until("transfer.received")
        assert data["address"] == bob.address and data["amount"] == str(777 * GWEI)
        assert data["from"] == alice.address and data["routingId"] == paid["routingId"]
        data = streams["alice"].until("transfer.completed")
        assert data["address"] == alice.address and data["routingId"] == paid["routingId"]
        time.sleep(1)
        for name, wallet in (("alice", alice), ("bob", bob), ("carol", carol)):
            assert all(d["address"] == wallet.address for _e, d in streams[name].drain())
        assert streams["carol"].drain() == []
    finally:
        for stream in streams.values():
            stream.close()


def test_the_stream_needs_the_wallets_token_and_is_limited_per_wallet(
        web_url: str, new_wallet: Callable[[], ApiWallet]) -> None:
    alice, bob = new_wallet(), new_wallet()
    url = f"{web_url}/api/v1/wallets/{alice.address}/events"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers=bob.headers, timeout=10).status_code == 403
    streams = [Stream(alice) for _ in range(8)]
    try:
        ninth = requests.get(url, headers=alice.headers, timeout=10)
        assert ninth.status_code == 429
        assert ninth.json()["error"]["code"] == "too_many_streams"
        Stream(bob).close()  # other wallets are not affected
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.parametrize("asset", ["ETH", "TEST"])
def test_deposits_sent_by_anyone_are_credited(asset: str, new_wallet: Callable[[], ApiWallet],
                                              send_to: Callable[[str, str, int], None]
                                              ) -> None:
    wallet = new_wallet()
    nothing = wallet.post("/deposit", {"assetId": asset})
    assert nothing["credited"] == "0" and nothing["balance"]["amount"] == "0"
    send_to(asset, wallet.channel_address, 3 * 10**15)
    # the node's watcher may credit it first; either way the balance is exact
    credited = wallet.post("/deposit", {"assetId": asset})
    assert credited["balance"]["amount"] == str(3 * 10**15)
    assert credited["balance"]["symbol"] == asset


def test_the_faucet_gives_a_wallet_a_few_drips_an_hour(
        web_url: str, new_wallet: Callable[[], ApiWallet]) -> None:
    wallet = new_wallet()
    url = f"{web_url}/api/v1/wallets/{wallet.address}/faucet"
    for drip in range(1, 6):  # CONNEXT_FAUCET_PER_WALLET_PER_HOUR: 5 by default
        funded = wallet.post("/faucet", {"assetId": "ETH"})
        assert funded["balance"]["amount"] == str(drip * ETHER)
    refused = requests.post(url, json={"assetId": "ETH"}, headers=wallet.headers, timeout=30)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "faucet_limited"
    assert int(refused.headers["Retry-After"]) > 3000
    assert wallet.balances()["ETH"] == 5 * ETHER  # nothing was sent
    other = new_wallet()  # another wallet still gets its share
    assert other.post("/faucet", {"assetId": "ETH"})["balance"]["amount"] == str(ETHER)


def test_a_payment_id_pays_once_however_often_it_is_posted(
        web_url: str, new_wallet: Callable[[], ApiWallet],
        funded_wallet: Callable[[], ApiWallet]) -> None:
    payer, payee = funded_wallet(), new_wallet()
    body = {"recipient": payee.address, "assetId": "ETH", "amount": str(PAID),
            "paymentId": "invoice-2026-0042"}
    first = payer.post("/transfers", body, expect=201)
    again = payer.post("/transfers", body, expect=201)
    assert first["status"] == again["status"] == "completed"
    assert (again["transferId"], again["routingId"]) == (first["transferId"], first["routingId"])
    assert payee.eth() == PAID and payer.eth() == ETHER - PAID
    other = payer.post("/transfers", {**body, "amount": str(2 * PAID)}, expect=409)
    assert other["error"]["code"] == "payment_id_reused"
    bad = payer.post("/transfers", {**body, "paymentId": "not ok!"}, expect=422)
    assert bad["error"]["field"] == "paymentId"
    assert payee.eth() == PAID and payer.eth() == ETHER - PAID
