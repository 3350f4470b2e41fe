"""New wallets per client address are limited (a public server would otherwise hand out
wallets and node channels without bound); wallets already open keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import WebConfig
from app.limits import FaucetLimit, FaucetLimited, SlidingWindow, TooMany


def test_the_window_counts_per_key_and_forgets_after_an_hour() -> None:
    limit = SlidingWindow(2)
    limit.hit("a", now=0)
    limit.hit("a", now=10)
    limit.hit("b", now=10)  # another client is not affected
    with pytest.raises(TooMany) as refused:
        limit.hit("a", now=20)
    assert refused.value.retry_after == 3581
    assert "try again in 60 minutes" in refused.value.message
    limit.hit("a", now=3600.5)  # the first one left the window
    SlidingWindow(0).hit("a")  # 0: no limit


def test_the_window_tracks_a_bounded_number_of_clients() -> None:
    limit = SlidingWindow(1, max_keys=3)
    for key in "abcd":
        limit.hit(key, now=0)
    limit.hit("a", now=1)  # "a" was evicted, so it starts again: memory stays bounded


def test_first_visits_and_the_api_stop_at_the_limit_but_open_wallets_keep_working(
        tmp_path: Path) -> None:
    config = WebConfig(data_dir=tmp_path, secret_key="s" * 64, node_url="http://127.0.0.1:9",
                       chain_url="http://127.0.0.1:9", new_wallets_per_hour=2,
                       testing=True)
    app = create_app(config)
    try:
        first, second, third = (app.test_client() for _ in range(3))
        for browser in (first, second):
            assert browser.get("/settings").status_code == 200  # a wallet is created
        refused = third.get("/settings")
        assert refused.status_code == 429
        assert "Too many new wallets" in refused.get_data(as_text=True)
        assert refused.headers["Retry-After"].isdigit()
        assert first.get("/settings").status_code == 200  # its wallet exists: no new one
        from_elsewhere = app.test_client().get(
            "/settings", environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert from_elsewhere.status_code == 200

        api = app.test_client().post("/api/v1/wallets", json={})
        assert api.status_code == 429
        assert api.get_json()["error"]["code"] == "too_many_wallets"
        assert api.headers["Retry-After"].isdigit()
    finally:
        app.extensions["connext.wallets"].close()


def test_the_faucet_limits_each_wallet_and_the_server() -> None:
    limit = FaucetLimit(per_wallet=2, overall=3)
    limit.hit("a")
    limit.hit("a")
    with pytest.raises(FaucetLimited) as refused:
        limit.hit("a")
    assert refused.value.code == "faucet_limited"
    assert "faucet drips for this wallet" in refused.value.message
    limit.hit("b")  # another wallet has its own share ...
    with pytest.raises(FaucetLimited) as drained:
        limit.hit("c")  # ... until the server's share for the hour is gone
    assert "faucet drips on this server" in drained.value.message
