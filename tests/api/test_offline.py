"""The API's guard rails with no network at all: tokens, bodies, routes and the event
stream are all checked before a wallet's client is needed (a valid request then gets a
JSON 503, never a 500)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.api_events import EventHub, EventStream, TooManyStreams
from app.config import WebConfig
from app.wallets import Wallet, WalletService

DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture
def service(tmp_path: Path) -> Iterator[WalletService]:
    config = WebConfig(data_dir=tmp_path, secret_key="s" * 64, chain_url=DOWN, node_url=DOWN,
                       nats_url="nats://127.0.0.1:9", testing=True)
    wallets = WalletService(config)
    yield wallets
    wallets.close()


@pytest.fixture
def app(service: WalletService) -> Flask:
    app = create_app(service.config, service)
    app.config["API_HEARTBEAT_SECONDS"] = 0.05
    return app


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def alice(service: WalletService) -> tuple[Wallet, str]:
    wallet = service.create_wallet()
    return wallet, service.create_token(wallet, "test")


@pytest.fixture
def bob(service: WalletService) -> tuple[Wallet, str]:
    wallet = service.create_wallet()
    return wallet, service.create_token(wallet, "test")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert body["error"]["message"].endswith((".", "?", "!"))
    return body["error"]  # type: ignore[no-any-return]


ROUTES = [("GET", ""), ("GET", "/balances"), ("GET", "/channel"), ("GET", "/history"),
          ("GET", "/events"), ("POST", "/deposit"), ("POST", "/faucet"),
          ("POST", "/transfers"), ("POST", "/transfers/conditional"),
          ("POST", "/transfers/0x" + "11" * 32 + "/resolve"),
          ("POST", "/transfers/0x" + "11" * 32 + "/cancel"), ("POST", "/withdrawals"),
          ("POST", "/force-close"), ("POST", "/exit"), ("GET", "/streams"),
          ("POST", "/streams"), ("POST", "/streams/0x" + "22" * 32 + "/pay"),
          ("POST", "/streams/0x" + "22" * 32 + "/close"), ("GET", "/oracle-payments"),
          ("POST", "/oracle-payments"),
          ("POST", "/oracle-payments/0x" + "11" * 32 + "/claim"), ("POST", "/quotes")]


def test_the_token_check_covers_every_documented_wallet_route(app: Flask) -> None:
    from app.openapi import paths

    documented = {(m, p.removeprefix("/api/v1/wallets/{address}")) for m, p in paths()
                  if p.startswith("/api/v1/wallets/{address}")}
    checked = {(m, r.replace("0x" + "11" * 32, "{transferId}")
                .replace("0x" + "22" * 32, "{streamId}")) for m, r in ROUTES}
    assert documented == checked


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_every_wallet_route_needs_the_wallets_own_token(
        http: FlaskClient, service: WalletService, alice: tuple[Wallet, str],
        bob: tuple[Wallet, str], method: str, route: str) -> None:
    wallet, token = alice
    url = f"/api/v1/wallets/{wallet.address}{route}"
    missing = error_of(http.open(url, method=method, json={}), 401)
    assert missing["code"] == "unauthorized"
    response = http.open(url, method=method, json={}, headers={"Authorization": "Basic x"})
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response, 401)["code"] == "unauthorized"
    assert error_of(http.open(url, method=method, json={}, headers=auth("cxt_nope")),
                    401)["code"] == "invalid_token"
    other = error_of(http.open(url, method=method, json={}, headers=auth(bob[1])), 403)
    assert other["code"] == "forbidden"
    # a revoked token stops working at once
    assert service.revoke_token(wallet, token[:12])
    assert error_of(http.open(url, method=method, json={}, headers=auth(token)),
                    401)["code"] == "invalid_token"


def transfer_body(to: str, **changes: Any) -> dict[str, Any]:
    return {"recipient": to, "assetId": "ETH", "amount": "1000", **changes}


@pytest.mark.parametrize(("body", "code", "field"), [
    ("not json", "invalid_json", None),
    ([1, 2], "not_an_object", None),
    ({"assetId": "ETH", "amount": "1"}, "missing_field", "recipient"),
    ("bad address", "invalid_address", "recipient"),
    ({"amount": "1.5"}, "invalid_amount", "amount"),
    ({"amount": "-1"}, "invalid_amount", "amount"),
    ({"amount": "0"}, "invalid_amount", "amount"),
    ({"amount": 0.5}, "invalid_amount", "amount"),
    ({"amount": str(2**256)}, "invalid_amount", "amount"),
    ({"colour": "red"}, "unknown_field", "colour"),
    ({"meta": {"recipient": "0x" + "00" * 20}}, "invalid_input", "meta"),
    ({"timeout": 10}, "invalid_input", "timeout"),
    ({"wait": 61}, "invalid_input", "wait"),
    ("nested", "too_deeply_nested", None),
    ("self", "transfer_to_self", "recipient"),
])
def test_malformed_transfer_bodies_get_a_422_naming_the_field(
        http: FlaskClient, alice: tuple[Wallet, str], bob: tuple[Wallet, str], body: Any,
        code: str, field: str | None) -> None:
    wallet, token = alice
    url = f"/api/v1/wallets/{wallet.address}/transfers"
    if body == "not json":
        response = http.post(url, data="{recipient: bob}", headers=auth(token),
                             content_type="application/json")
    elif body == "nested":
        raw = json.dumps(transfer_body(bob[0].address, meta={})).replace(
            "{}", "[" * 20_000 + "]" * 20_000)
        response = http.post(url, data=raw, headers=auth(token),
                             content_type="application/json")
    elif body == "bad address":
        response = http.post(url, json=transfer_body("0x1234"), headers=auth(token))
    elif body == "self":
        response = http.post(url, json=transfer_body(wallet.address), headers=auth(token))
    elif isinstance(body, dict) and "recipient" not in body and "assetId" not in body:
        response = http.post(url, json=transfer_body(bob[0].address, **body),
                             headers=auth(token))
    else:
        response = http.post(url, json=body, headers=auth(token))
    error = error_of(response, 422)
    assert error["code"] == code
    assert error.get("field") == field


def test_wrong_content_type_is_415_and_a_huge_body_413(
        http: FlaskClient, alice: tuple[Wallet, str]) -> None:
    wallet, token = alice
    url = f"/api/v1/wallets/{wallet.address}/deposit"
    form = http.post(url, data={"assetId": "ETH"}, headers=auth(token))
    assert error_of(form, 415)["code"] == "unsupported_media_type"
    huge = http.post(url, data=json.dumps({"assetId": "x" * 100_000}), headers=auth(token),
                     content_type="application/json")
    assert error_of(huge, 413)["code"] == "payload_too_large"


def test_a_valid_request_with_the_network_down_is_a_json_503(
        http: FlaskClient, alice: tuple[Wallet, str], bob: tuple[Wallet, str]) -> None:
    wallet, token = alice
    response = http.post(f"/api/v1/wallets/{wallet.address}/transfers",
                         json=transfer_body(bob[0].address), headers=auth(token))
    assert error_of(response, 503)["code"] == "node_unreachable"
    created = http.post("/api/v1/wallets")
    assert error_of(created, 503)["code"] == "node_unreachable"


def test_history_query_values_are_checked(http: FlaskClient,
                                          alice: tuple[Wallet, str]) -> None:
    wallet, token = alice
    for query in ("limit=0", "limit=abc", "after=-1", "limit=1000"):
        response = http.get(f"/api/v1/wallets/{wallet.address}/history?{query}",
                            headers=auth(token))
        assert error_of(response, 422)["field"] == query.split("=")[0]


def test_unknown_api_routes_and_methods_answer_json(http: FlaskClient,
                                                    alice: tuple[Wallet, str]) -> None:
    wallet, _token = alice
    assert error_of(http.get("/api/v2/anything"), 404)["code"] == "not_found"
    assert error_of(http.get("/api/"), 404)["code"] == "not_found"
    response = http.delete(f"/api/v1/wallets/{wallet.address}/transfers")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
    response = http.put(f"/api/v1/wallets/{wallet.address}")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert error_of(http.get("/api/v1/wallets"), 405)["code"] == "method_not_allowed"
    options = http.options(f"/api/v1/wallets/{wallet.address}/transfers")
    assert options.status_code == 200 and options.headers["Allow"] == "OPTIONS, POST"
    assert error_of(http.options("/api/v2/anything"), 404)["code"] == "not_found"
    # the rest of the site keeps its own pages
    assert http.get("/no-such-page").mimetype == "text/html"


def test_the_faucet_says_clearly_when_it_is_off(
        tmp_path: Path, alice: tuple[Wallet, str], monkeypatch: pytest.MonkeyPatch,
        service: WalletService) -> None:
    monkeypatch.setattr(WalletService, "faucet_enabled", property(lambda self: False))
    wallet, token = alice
    http = create_app(service.config, service).test_client()
    response = http.post(f"/api/v1/wallets/{wallet.address}/faucet", json={"assetId": "ETH"},
                         headers=auth(token))
    error = error_of(response, 403)
    assert error["code"] == "faucet_disabled" and "local development chain" in error["message"]


# --- the event stream ---------------------------------------------------------------------


def test_the_hub_delivers_only_to_the_wallets_own_streams() -> None:
    hub = EventHub()
    a1, a2, b = hub.subscribe("0xA"), hub.subscribe("0xA"), hub.subscribe("0xB")
    hub.publish("0xA", "transfer.received", {"event": "transfer.received", "amount": "5"})
    assert a1.queue.get_nowait() == ("transfer.received", {
        "address": "0xA", "event": "transfer.received", "amount": "5"})
    assert a2.queue.qsize() == 1 and b.queue.empty()
    hub.publish("0xC", "deposit.reconciled", {})
    assert b.queue.empty()
    hub.unsubscribe(a1)
    hub.unsubscribe(a1)  # idempotent
    assert hub.count("0xA") == 1 and hub.count() == 2


def test_a_slow_stream_is_closed_instead_of_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.api_events.MAX_QUEUE", 3)
    hub = EventHub()
    subscription = hub.subscribe("0xA")
    for n in range(10):
        hub.publish("0xA", "transfer.received", {"n": n})
    stream = EventStream(hub, subscription, heartbeat=0.01)
    lines = list(stream)
    assert lines[0].startswith("retry: 3000\nevent: ready")
    assert lines[-1].startswith("event: overflow")
    assert hub.count() == 0


def test_streams_are_limited_per_wallet_and_in_all() -> None:
    hub = EventHub(max_per_wallet=2, max_total=3)
    hub.subscribe("0xA")
    hub.subscribe("0xA")
    with pytest.raises(TooManyStreams):
        hub.subscribe("0xA")
    hub.subscribe("0xB")
    with pytest.raises(TooManyStreams):
        hub.subscribe("0xC")


def test_a_stream_never_started_still_unsubscribes_when_closed() -> None:
    hub = EventHub(max_per_wallet=1)
    stream = EventStream(hub, hub.subscribe("0xA"))
    stream.close()
    assert hub.count() == 0
    hub.subscribe("0xA")  # the slot is free again


def test_the_stream_route_sends_the_wallets_events_and_heartbeats(
        app: Flask, http: FlaskClient, service: WalletService, alice: tuple[Wallet, str],
        bob: tuple[Wallet, str], monkeypatch: pytest.MonkeyPatch) -> None:
    async def connected(wallet: Wallet) -> object:
        return object()

    monkeypatch.setattr(service, "client", connected)
    wallet, token = alice
    response = http.get(f"/api/v1/wallets/{wallet.address}/events", headers=auth(token))
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = iter(response.response)  # type: ignore[call-overload]

    def next_text() -> str:
        chunk = next(chunks)
        return chunk.decode() if isinstance(chunk, bytes) else str(chunk)

    assert "event: ready" in next_text()
    hub: EventHub = app.extensions["connext.api.events"]
    assert hub.count(wallet.address) == 1
    for listener in service.listeners:  # what the wallet loop does for every event
        listener(bob[0].address, "transfer.received", {"amount": "7"})
        listener(wallet.address, "transfer.received",
                 {"event": "transfer.received", "amount": "5"})
    text = next_text()
    assert text.startswith("event: transfer.received\n")
    data = json.loads(text.split("data: ", 1)[1])
    assert data == {"address": wallet.address, "event": "transfer.received", "amount": "5"}
    assert next_text() == ": heartbeat\n\n"  # bob's event never came
    response.close()
    assert hub.count() == 0
