"""What a live event of a new state shows the home page (pure: no stack)."""

from __future__ import annotations

from app.assets import ETHER, Asset
from app.live import shown_balances

TOKEN = Asset("0x" + "11" * 20, "TST", 6, "Test token")


def test_a_states_balances_are_shown_per_listed_asset_in_the_pages_format() -> None:
    assets = {ETHER.address: ETHER, TOKEN.address: TOKEN}
    shown = shown_balances(assets, {ETHER.address: str(25 * 10**16), TOKEN.address: "1500000"})
    assert shown == {"ETH": ETHER.format(25 * 10**16), "TST": TOKEN.format(1_500_000)}
    assert shown["ETH"] == "0.25"
    # an asset the state does not hold yet shows 0; a malformed amount is left to the refresh
    assert shown_balances(assets, {ETHER.address: "-1"}) == {"TST": TOKEN.format(0)}
