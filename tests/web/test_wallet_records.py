"""Wallet records at rest, sessions and CSRF: no network needed, so no stack."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.config import WebConfig
from app.wallets import Sealer, WalletService


def config(tmp_path: Path, secret: str = "s" * 64) -> WebConfig:
    return WebConfig(data_dir=tmp_path, secret_key=secret, chain_url="http://127.0.0.1:9",
                     node_url="http://127.0.0.1:9", nats_url="nats://127.0.0.1:9")


@pytest.fixture
def service(tmp_path: Path) -> WalletService:
    wallets = WalletService(config(tmp_path))
    yield wallets  # type: ignore[misc]
    wallets.close()


def test_phrases_are_encrypted_at_rest_and_survive_a_restart(tmp_path: Path) -> None:
    first = WalletService(config(tmp_path))
    wallet = first.create_wallet()
    phrase = first.phrase(wallet)
    first.close()
    raw = (tmp_path / "wallets.sqlite").read_bytes()
    assert phrase.encode() not in raw and phrase.split()[0].encode() not in raw.split(b"\0")

    again = WalletService(config(tmp_path))
    assert again.get_wallet(wallet.id) == wallet
    assert again.phrase(wallet) == phrase
    again.close()

    stolen = WalletService(config(tmp_path, secret="another secret"))
    with pytest.raises(Exception):  # noqa: B017 - AES-GCM refuses: InvalidTag
        stolen.phrase(wallet)
    stolen.close()


def test_a_sealed_phrase_cannot_be_moved_to_another_wallet() -> None:
    sealer = Sealer("secret")
    sealed = sealer.seal("abandon " * 11 + "about", "wallet-a")
    assert sealer.open(sealed, "wallet-a").endswith("about")
    with pytest.raises(Exception):  # noqa: B017
        sealer.open(sealed, "wallet-b")


def test_restoring_a_phrase_gives_the_same_address(service: WalletService) -> None:
    wallet = service.create_wallet()
    again = service.create_wallet("  " + service.phrase(wallet).upper() + "\n")
    assert again.address == wallet.address and again.id != wallet.id


def test_api_tokens_are_stored_hashed_and_can_be_revoked(service: WalletService,
                                                         tmp_path: Path) -> None:
    wallet, other = service.create_wallet(), service.create_wallet()
    token = service.create_token(wallet, "ci")
    assert service.wallet_for_token(token) == wallet
    assert service.wallet_for_token(token + "x") is None
    rows = sqlite3.connect(tmp_path / "wallets.sqlite").execute(
        "select token_hash from api_tokens").fetchall()
    assert token not in str(rows)
    prefix = service.tokens(wallet)[0].prefix
    assert not service.revoke_token(other, prefix)  # not theirs
    assert service.revoke_token(wallet, prefix)
    assert service.wallet_for_token(token) is None


def address(client: FlaskClient) -> str:
    page = client.get("/settings").get_data(as_text=True)
    found = re.search(r'data-address="(0x[0-9a-fA-F]{40})"', page)
    assert found, page[:500]
    return found.group(1)


def test_each_browser_gets_its_own_wallet_and_a_forged_cookie_gets_none(
        tmp_path: Path) -> None:
    app = create_app(config(tmp_path))
    try:
        alice, bob = app.test_client(), app.test_client()
        mine = address(alice)
        assert address(alice) == mine  # the same browser keeps its wallet
        assert address(bob) != mine
        # a session cookie that was tampered with is ignored: a new wallet, not alice's
        cookie = alice.get_cookie("session")
        assert cookie is not None
        mallory = app.test_client()
        mallory.set_cookie("session", cookie.value[:-4] + "AAAA")
        assert address(mallory) not in (mine, address(bob))
        # nor is one signed with another key (e.g. by a guessed secret)
        forger = create_app(config(tmp_path / "forger", secret="guess"))
        try:
            forged = forger.test_client()
            address(forged)
            stolen = forged.get_cookie("session")
            assert stolen is not None
            mallory.set_cookie("session", stolen.value)
            assert address(mallory) != mine
        finally:
            forger.extensions["connext.wallets"].close()
    finally:
        app.extensions["connext.wallets"].close()


def test_forms_refuse_a_post_without_the_csrf_token(tmp_path: Path) -> None:
    app = create_app(config(tmp_path))
    try:
        browser = app.test_client()
        address(browser)
        response = browser.post("/settings/tokens", data={"label": "x"})
        assert response.status_code == 400
        assert "CSRF" in response.get_data(as_text=True)
        page = browser.get("/settings").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        ok = browser.post("/settings/tokens", data={"label": "x", "csrf_token": token.group(1)})
        assert ok.status_code == 200 and 'data-testid="new-token"' in ok.get_data(as_text=True)
    finally:
        app.extensions["connext.wallets"].close()


def test_every_wallet_form_refuses_a_post_without_the_csrf_token(tmp_path: Path) -> None:
    """Not only the forms someone remembered: every POST route outside the token API,
    including the ones that move funds on chain (force-close, exit)."""
    app = create_app(config(tmp_path))
    try:
        browser = app.test_client()
        address(browser)
        routes = sorted(rule.rule for rule in app.url_map.iter_rules()
                        if "POST" in (rule.methods or set()) and not rule.rule.startswith("/api/")
                        and "<" not in rule.rule)
        assert {"/channel/force-close", "/channel/exit", "/send", "/withdraw"} <= set(routes)
        for route in routes:
            response = browser.post(route, data={"confirm": "yes", "to": "0x" + "11" * 20})
            assert response.status_code == 400, route
            assert "CSRF" in response.get_data(as_text=True), route
    finally:
        app.extensions["connext.wallets"].close()
