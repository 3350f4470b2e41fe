"""The operator dashboard shows each asset's amounts exactly, in the asset's own decimals and
symbol (the node's /admin/rates names them), and an asset it does not know in base units."""

from __future__ import annotations

from pathlib import Path

from flask import render_template

from .test_security import make_app

ETH = "0x0000000000000000000000000000000000000000"
USDC = "0x" + "a0" * 20
OTHER = "0x" + "be" * 20


def test_amounts_are_exact_in_each_assets_decimals(tmp_path: Path) -> None:
    snapshot = {
        "summary": {
            "address": "0x" + "11" * 20, "chainId": 1337, "channels": 2, "lowLiquidity": [],
            "payments": {"total": 3, "byStatus": {"resolved": 3}},
            "volume24h": [{"assetId": ETH, "payments": 2, "amount": str(10**18 + 1)},
                          {"assetId": USDC, "payments": 1, "amount": "2500000"}],
            "liquidity": [{"assetId": OTHER, "onChain": "42", "inChannels": "0",
                           "channels": 0, "low": False}],
        },
        "timeline": [], "failures": [],
        "collateral": [{"at": "2026-12-02T10:00:00+00:00", "kind": "deposit",
                        "channelAddress": "0x" + "22" * 20, "assetId": USDC,
                        "amount": "1000001"}],
        "assets": {ETH: {"symbol": "ETH", "decimals": 18},
                   USDC: {"symbol": "USDC", "decimals": 6}},
    }
    app = make_app(tmp_path, node_admin_token="operator-secret-token")
    try:
        with app.test_request_context("/node"):
            page = render_template("node.html", snapshot=snapshot, error=None)
    finally:
        app.extensions["connext.wallets"].close()
    assert "1.000000000000000001 ETH in 2 payments" in page  # not rounded to 6 places
    assert "2.5 USDC in 1 payments" in page  # 6 decimals, not 18
    assert "1.000001 USDC" in page
    assert "42 base units" in page
