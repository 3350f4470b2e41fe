"""An integrator in another process, with nothing but Python's standard library: create two
wallets over the JSON API, fund one from the faucet, pay the other, read both balances.

    python tests/api/pay_over_http.py http://127.0.0.1:3000

Prints one JSON object (every response it got) on stdout; exits 1 on any unexpected
answer. tests/api/test_live.py runs it and checks the numbers.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

AMOUNT = "250000000000000000"  # 0.25 ETH in base units


class ApiFailure(Exception):
    pass


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None,
         token: str | None = None, expect: int = 200) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    if status != expect:
        raise ApiFailure(f"{method} {path}: expected {expect}, got {status}: {text}")
    result: dict[str, Any] = json.loads(text)
    return result


def eth_balance(base: str, wallet: dict[str, Any]) -> int:
    balances = call(base, "GET", f"/api/v1/wallets/{wallet['address']}/balances",
                    token=wallet["token"])["balances"]
    (eth,) = [b for b in balances if b["symbol"] == "ETH"]
    return int(eth["amount"])


def main(base: str) -> dict[str, Any]:
    base = base.rstrip("/")
    alice = call(base, "POST", "/api/v1/wallets", {"label": "pay_over_http"}, expect=201)
    bob = call(base, "POST", "/api/v1/wallets", expect=201)
    funded = call(base, "POST", f"/api/v1/wallets/{alice['address']}/faucet",
                  {"assetId": "ETH"}, token=alice["token"])
    before = {"alice": eth_balance(base, alice), "bob": eth_balance(base, bob)}
    payment = call(base, "POST", f"/api/v1/wallets/{alice['address']}/transfers",
                   {"recipient": bob["address"], "assetId": "ETH", "amount": AMOUNT},
                   token=alice["token"], expect=201)
    after = {"alice": eth_balance(base, alice), "bob": eth_balance(base, bob)}
    history = call(base, "GET", f"/api/v1/wallets/{bob['address']}/history",
                   token=bob["token"])
    return {"alice": alice, "bob": bob, "funded": funded, "payment": payment,
            "amount": AMOUNT, "before": before, "after": after, "bobHistory": history}


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1])))
    except ApiFailure as failure:
        print(failure, file=sys.stderr)
        sys.exit(1)
