"""Swaps on a real anvil, nats-server and node: A pays in TEST, B receives ETH at the
configured rate less the fee, to the wei on both sides and in the node's books; quotes that
are expired, foreign, altered, used, for an unsupported pair or beyond the node's collateral
are refused with typed errors and nothing moves; a swap inside one's own channel, cashed
out on chain in the other asset. One node for the whole module (one stack start)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from connext.chain.contracts import connect
from connext.client import Client
from connext.protocol import errors
from connext.protocol.identifiers import forward_transfer_id
from connext.protocol.signing import Signer
from connext.protocol.swaps import SwapQuote, amount_out_for
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH
from connext.store import ChannelStore

from .conftest import ClientFactory, NodeProcess
from .test_payments import balances_are, eventually

ETHER = 10**18
RATE = "0.0005"  # ETH per TEST
FEE_BPS = 30
FEE_FIXED = 1000  # wei of ETH
CLAIM_WINDOW = 120
SWAPS = [
    {"from": "TEST", "to": "ETH", "rate": RATE, "feeBps": FEE_BPS, "fee": str(FEE_FIXED)},
    {"from": "ETH", "to": "TEST", "rate": "1999", "feeBps": FEE_BPS},
]


@pytest.fixture
def rates_file(tmp_path: Path) -> Path:
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"TEST/ETH": "0.001"}))
    return path


@pytest.fixture
def node_extra_env(request: pytest.FixtureRequest, rates_file: Path) -> dict[str, str]:
    if "feed" in request.node.name:  # the pair's rate comes from the operator's file
        return {"CONNEXT_SWAPS": json.dumps([{"from": "TEST", "to": "ETH"}]),
                "CONNEXT_RATES_SOURCE": str(rates_file), "CONNEXT_RATES_INTERVAL": "0.2",
                "CONNEXT_RATES_MAX_AGE": "2"}
    return {"CONNEXT_SWAPS": json.dumps(SWAPS), "CONNEXT_QUOTE_TTL": "60",
            "CONNEXT_SWAP_CLAIM_WINDOW": str(CLAIM_WINDOW)}


def expected_out(amount_in: int) -> tuple[int, int]:
    """The amount out and fee, computed here from the configuration by hand."""
    gross = amount_in * Fraction(RATE).numerator // Fraction(RATE).denominator
    fee = FEE_FIXED + -(-gross * FEE_BPS // 10_000)
    return gross - fee, fee


def test_a_pays_test_b_receives_eth_at_the_quote_and_bad_quotes_move_nothing(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> tuple[list[SwapQuote], list[SwapQuote]]:
        w3 = connect(clients.anvil.url)
        a, b, c = [await clients.connect() for _ in range(3)]
        try:
            for client in (a, b, c):
                await client.setup()
            await a.deposit(token, 10 * ETHER)
            await c.deposit(token, 10 * ETHER)

            info = await a.node_info()
            assert {x["symbol"]: x["address"] for x in info["assets"]} == {
                "ETH": ETH, "TEST": token}
            assert {(p["from"], p["to"]) for p in info["swaps"]} == {
                ("TEST", "ETH"), ("ETH", "TEST")}

            # --- the honest swap: TEST in, ETH out, to the wei -----------------------------
            quote = await a.quote(token, ETH, ETHER)
            out, fee = expected_out(ETHER)
            assert (quote.amount_out, quote.fee) == (out, fee)
            assert (quote.amount_out, quote.fee) == amount_out_for(
                ETHER, Fraction(RATE), fee_fixed=FEE_FIXED, fee_bps=FEE_BPS)
            paid_at = int(time.time())
            result = await a.transfer(b.address, token, ETHER, quote=quote, wait=30)
            assert result.status == "completed"
            assert await a.balances() == {token: 9 * ETHER}
            # B commits its claim when the node's answer reaches it, a moment after the
            # node settled A
            await eventually(lambda: balances_are(b, {ETH: out}), timeout=10)
            # B could have held it only for the claim window, not for A's hour-long lock
            forward = await b.store.run(b.store.get_transfer,
                                        forward_transfer_id(result.routing_id),
                                        channel_address=b.channel_address)
            sent = await a.store.run(a.store.get_transfer, result.transfer_id,
                                     channel_address=a.channel_address)
            assert forward is not None and sent is not None
            assert HASHLOCK.decode_state(sent.initial_state)[1] >= paid_at + 3000
            assert paid_at < HASHLOCK.decode_state(forward.initial_state)[1] <= (
                int(time.time()) + CLAIM_WINDOW)

            # the node's books: +1 TEST in A's channel, -out ETH in B's, the quote recorded
            a_view = await _node_view(node, a)
            b_view = await _node_view(node, b)
            assert _node_side(a_view, token) == ETHER
            assert _user_side(b_view, ETH) == out
            assert _node_side(b_view, ETH) == _node_deposits(b_view, ETH) - out

            async def unchanged() -> None:
                assert await a.balances() == {token: 9 * ETHER}
                assert await b.balances() == {ETH: out}
                assert await c.balances() == {token: 10 * ETHER}
                assert await a.active_transfers() == {}
                assert node.channel(b.channel_address)["state"] == b_view

            # --- refused quotes: typed errors, nothing moves -----------------------------------
            with pytest.raises(errors.QuoteUsed):  # a quote pays once
                await a.transfer(b.address, token, ETHER, quote=quote, wait=30)
            await unchanged()

            fresh = await a.quote(token, ETH, ETHER)
            more = replace(fresh, amount_out=fresh.amount_out * 2)  # the payer raises the out
            with pytest.raises(errors.QuoteAltered):
                await a.transfer(b.address, token, ETHER, quote=more, wait=30)
            cheaper = replace(fresh, fee=0)
            with pytest.raises(errors.QuoteAltered):
                await a.transfer(b.address, token, ETHER, quote=cheaper, wait=30)
            await unchanged()

            theirs = await c.quote(token, ETH, ETHER)  # signed for C's channel
            with pytest.raises(errors.QuoteForeign):
                await a.transfer(b.address, token, ETHER, quote=theirs, wait=30)
            await unchanged()

            short = await a.quote(token, ETH, ETHER, ttl=1)
            await asyncio.sleep(1.2)
            with pytest.raises(errors.QuoteExpired):
                await a.transfer(b.address, token, ETHER, quote=short, wait=30)
            await unchanged()

            with pytest.raises(errors.UnsupportedSwap):  # no quote, another asset asked for
                await a.transfer(b.address, token, ETHER, meta={"recipientAsset": ETH}, wait=30)
            with pytest.raises(errors.UnsupportedSwap):
                await a.quote(token, token, ETHER)
            with pytest.raises(errors.UnsupportedSwap):
                await a.quote(token, Signer.random().address, ETHER)
            with pytest.raises(errors.InsufficientCollateral):  # beyond the node's cap of ETH
                await a.quote(token, ETH, 10**6 * ETHER)
            with pytest.raises(errors.InvalidAmount):  # dust: nothing left after the fee
                await a.quote(token, ETH, 10**6)
            with pytest.raises(errors.AmountBelowMinimum):  # pays out less than the minimum
                await a.quote(token, ETH, 10**9)
            await unchanged()

            # the altered attempts did not burn the honest quote: it still pays, once
            result = await a.transfer(b.address, token, ETHER, quote=fresh, wait=30)
            assert result.status == "completed"
            await eventually(lambda: balances_are(b, {ETH: 2 * out}), timeout=10)

            # --- a swap inside one's own channel, cashed out on chain in the other asset ----
            own = await a.quote(token, ETH, 2 * ETHER)
            own_out, _ = expected_out(2 * ETHER)
            assert own.amount_out == own_out
            assert (await a.swap(own, wait=30)).status == "completed"
            assert await a.balances() == {token: 6 * ETHER, ETH: own_out}
            cash_out = Signer.random().address
            withdrawal = await a.withdraw(cash_out, ETH, own_out)
            assert withdrawal.status == "confirmed"
            assert w3.eth.get_balance(cash_out) == own_out
            return [quote, fresh, own], [theirs, short]
        finally:
            for client in (a, b, c):
                await client.close()

    used, refused = asyncio.run(scenario())

    store = ChannelStore.open(node.env["CONNEXT_NODE_DATABASE_URL"])
    try:  # every swap is recorded with its routing: asset and amount out, the quote used
        swapped = [r for r in store.routings_with_status(("resolved",))
                   if r.recipient_asset_id is not None]
        uses = [store.quote_use(q.quote_id) for q in used]
        assert [store.quote_use(q.quote_id) for q in refused] == [None, None]
    finally:
        store.close()
    out, _fee = expected_out(ETHER)
    own_out, _ = expected_out(2 * ETHER)
    assert sorted((r.asset_id, r.amount, r.recipient_asset_id, r.recipient_amount)
                  for r in swapped) == sorted([
        (token, ETHER, ETH, out), (token, ETHER, ETH, out), (token, 2 * ETHER, ETH, own_out)])
    assert {u["routingId"] for u in uses if u is not None} == {
        "0x" + r.routing_id.hex() for r in swapped}


def test_rates_from_the_operators_feed_are_followed_and_a_signed_quote_holds_its_price(
    clients: ClientFactory, node: NodeProcess, rates_file: Path,
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def quote_once_the_rate_is(client: Client, amount_out: int) -> SwapQuote:
        for _ in range(100):
            try:
                quote = await client.quote(token, ETH, ETHER)
                if quote.amount_out == amount_out:
                    return quote
            except errors.RateUnavailable:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"the node never quoted {amount_out}")

    async def scenario() -> None:
        a, b = [await clients.connect() for _ in range(2)]
        try:
            for client in (a, b):
                await client.setup()
            await a.deposit(token, 2 * ETHER)
            old = await quote_once_the_rate_is(a, ETHER // 1000)
            rates_file.write_text(json.dumps({"TEST/ETH": "1/500"}))
            await quote_once_the_rate_is(a, ETHER // 500)
            # the rate doubled since: the quote signed before pays what it says, no more
            assert (await a.transfer(b.address, token, ETHER, quote=old)).status == "completed"
            await eventually(lambda: balances_are(b, {ETH: ETHER // 1000}), timeout=10)
            # a feed that stops updating stops quoting once its rates are too old
            rates_file.write_text("{not json")
            await asyncio.sleep(2.5)
            with pytest.raises(errors.RateUnavailable):
                await a.quote(token, ETH, ETHER)
        finally:
            for client in (a, b):
                await client.close()

    asyncio.run(scenario())


async def _node_view(node: NodeProcess, client: Client) -> dict[str, object]:
    """The node's copy of the client's channel once it holds the client's latest nonce (the
    node commits its own update a moment after the client countersigned it)."""
    nonce = (await client.channel()).nonce
    for _ in range(100):
        state: dict[str, object] = node.channel(client.channel_address)["state"]
        if int(str(state["nonce"])) >= nonce:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"the node never reached nonce {nonce}")


def _index(state: dict[str, object], asset: str) -> int:
    assets = state["assetIds"]
    assert isinstance(assets, list)
    return assets.index(asset)


def _node_side(state: dict[str, object], asset: str) -> int:
    balances = state["balances"]
    assert isinstance(balances, list)
    return int(balances[_index(state, asset)][0])


def _user_side(state: dict[str, object], asset: str) -> int:
    balances = state["balances"]
    assert isinstance(balances, list)
    return int(balances[_index(state, asset)][1])


def _node_deposits(state: dict[str, object], asset: str) -> int:
    deposits = state["processedDepositsA"]
    assert isinstance(deposits, list)
    return int(deposits[_index(state, asset)])
