"""Swap quotes, pure: the EIP-712 encoding against eth-account, the amount out in integer
math (rounding always for the node), and which quotes a payment may not use."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connext.node.rates import ConfiguredRates, FeedRates, FixedRates
from connext.node.swapconfig import PairConfig, SwapConfig, parse_rate
from connext.protocol import errors
from connext.protocol.encoding import SWAP_QUOTE_DOMAIN, checksum, swap_quote_digest
from connext.protocol.signing import Signer
from connext.protocol.swaps import (
    MAX_AMOUNT,
    SwapQuote,
    amount_out_for,
    base_rate,
    check_quote,
    quote_from_json,
    quote_to_json,
)

from .strategies import UINT256, addresses, bytes32
from .test_encoding import reference_digest

NODE = Signer(b"\x11" * 32)
PAYER = Signer(b"\x22" * 32)
OTHER = Signer(b"\x33" * 32)
CHANNEL = checksum(b"\xcc" * 20)
TEST = checksum(b"\x7e" * 20)
ETH = checksum(b"\x00" * 20)
NOW = 1_800_000_000


def _quote(**changes: Any) -> SwapQuote:
    base = SwapQuote(
        quote_id=b"\x01" * 32, node=NODE.address, chain_id=31337, payer=PAYER.address,
        channel_address=CHANNEL, asset_in=TEST, asset_out=ETH, amount_in=10**18,
        amount_out=498_500_000_000_000, fee=1_500_000_000_000, expiry=NOW + 60,
    )
    return replace(base, **changes).signed_by(NODE)


def _check(quote: SwapQuote, **changes: Any) -> None:
    terms: dict[str, Any] = {
        "node": NODE.address, "chain_id": 31337, "payer": PAYER.address,
        "channel_address": CHANNEL, "asset_id": TEST, "amount": 10**18, "now": NOW,
    }
    check_quote(quote, **{**terms, **changes})


@settings(max_examples=100, deadline=None)
@given(quote_id=bytes32, payer=addresses, channel=addresses, asset_in=addresses,
       asset_out=addresses, amount_in=UINT256, amount_out=UINT256, fee=UINT256,
       expiry=UINT256, node=addresses, chain_id=st.integers(1, 2**64))
def test_quote_digest_equals_eth_account_reference(
    quote_id: bytes, payer: str, channel: str, asset_in: str, asset_out: str, amount_in: int,
    amount_out: int, fee: int, expiry: int, node: str, chain_id: int,
) -> None:
    fields = [
        {"name": "quoteId", "type": "bytes32"}, {"name": "payer", "type": "address"},
        {"name": "channelAddress", "type": "address"}, {"name": "assetIn", "type": "address"},
        {"name": "assetOut", "type": "address"}, {"name": "amountIn", "type": "uint256"},
        {"name": "amountOut", "type": "uint256"}, {"name": "fee", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ]
    message = {"quoteId": quote_id, "payer": payer, "channelAddress": channel,
               "assetIn": asset_in, "assetOut": asset_out, "amountIn": amount_in,
               "amountOut": amount_out, "fee": fee, "expiry": expiry}
    expected = reference_digest(SWAP_QUOTE_DOMAIN, chain_id, node, "SwapQuote", fields, message)
    assert swap_quote_digest(chain_id, node, quote_id, payer, channel, asset_in, asset_out,
                             amount_in, amount_out, fee, expiry) == expected


# --- the amount out -------------------------------------------------------------------------


def test_amount_out_is_the_rate_less_the_fee_to_the_wei() -> None:
    # 1 TEST at 0.0005 ETH, 30 bps: gross 5e14, fee 1.5e12
    out, fee = amount_out_for(10**18, base_rate(Fraction("0.0005"), 18, 18), fee_bps=30)
    assert (out, fee) == (498_500_000_000_000, 1_500_000_000_000)


def test_rounding_goes_to_the_node_never_to_the_payer() -> None:
    # 3 base units at 1/2: gross 1.5 -> 1; fee of 1 bps of 1 -> rounded up to 1: nothing left
    with pytest.raises(errors.InvalidAmount):
        amount_out_for(3, Fraction(1, 2), fee_bps=1)
    out, fee = amount_out_for(7, Fraction(1, 2), fee_bps=1)  # gross 3, fee ceil(0.0003) = 1
    assert (out, fee) == (2, 1)


@settings(max_examples=300, deadline=None)
@given(amount_in=st.integers(1, 2**200), num=st.integers(1, 10**30),
       den=st.integers(1, 10**30), fee_fixed=st.integers(0, 10**20),
       fee_bps=st.integers(0, 9_999))
@example(amount_in=2**200, num=10**30, den=1, fee_fixed=0, fee_bps=9_999)  # out > 256 bits
def test_amount_out_never_exceeds_the_exact_value_less_the_exact_fee(
    amount_in: int, num: int, den: int, fee_fixed: int, fee_bps: int,
) -> None:
    rate = Fraction(num, den)
    exact = amount_in * rate
    try:
        out, fee = amount_out_for(amount_in, rate, fee_fixed=fee_fixed, fee_bps=fee_bps)
    except errors.InvalidAmount:  # only when (next to) nothing is left after the fee, or
        left = exact * (1 - Fraction(fee_bps, 10_000)) - fee_fixed  # more than 256 bits
        assert left < 2 or left > MAX_AMOUNT - 2
        return
    assert out > 0 and fee >= fee_fixed
    assert out + fee <= exact  # the gross is never rounded up
    assert Fraction(fee - fee_fixed) >= (out + fee) * Fraction(fee_bps, 10_000)  # fee rounded up
    assert out <= exact * (1 - Fraction(fee_bps, 10_000)) - fee_fixed


def test_decimals_mismatch_scales_the_rate() -> None:
    # 1 ETH (18 decimals) at 2000 USDC (6 decimals): 2000 * 10**6 base units
    rate = base_rate(Fraction(2000), 18, 6)
    assert amount_out_for(10**18, rate) == (2_000_000_000, 0)
    # 1 wei of ETH is worth 2e-9 base units of USDC: nothing to pay out
    with pytest.raises(errors.InvalidAmount):
        amount_out_for(1, rate)
    # the other way: 1 USDC base unit at 1/2000 ETH per USDC
    assert amount_out_for(1, base_rate(Fraction(1, 2000), 6, 18)) == (500_000_000, 0)


@pytest.mark.parametrize("amount", [0, -1, 2**256])
def test_zero_negative_and_huge_amounts_are_refused(amount: int) -> None:
    with pytest.raises(errors.InvalidAmount):
        amount_out_for(amount, Fraction(1))


def test_an_amount_out_beyond_256_bits_is_refused() -> None:
    with pytest.raises(errors.InvalidAmount):
        amount_out_for(2**255, Fraction(4))


# --- which quotes a payment may use ---------------------------------------------------------


def test_the_nodes_quote_for_this_payment_passes() -> None:
    _check(_quote())


@pytest.mark.parametrize("field,value", [
    ("amount_out", 498_500_000_000_001), ("fee", 0), ("amount_in", 10**17),
    ("asset_out", TEST), ("expiry", NOW + 10**6), ("quote_id", b"\x02" * 32),
    ("payer", OTHER.address), ("channel_address", checksum(b"\xdd" * 20)),
])
def test_any_field_changed_after_signing_is_an_altered_quote(field: str, value: Any) -> None:
    altered = replace(_quote(), **{field: value})
    with pytest.raises(errors.QuoteAltered):
        _check(altered, **({"amount": 10**17} if field == "amount_in" else {}))


def test_a_quote_signed_by_another_key_is_refused() -> None:
    forged = replace(_quote(), signature=b"").signed_by(OTHER)
    with pytest.raises(errors.QuoteAltered):
        _check(forged)
    with pytest.raises(errors.QuoteAltered):  # another node's own quote
        _check(replace(forged, node=OTHER.address))


def test_a_quote_for_another_payer_or_channel_is_foreign() -> None:
    with pytest.raises(errors.QuoteForeign):
        _check(_quote(), payer=OTHER.address)
    with pytest.raises(errors.QuoteForeign):
        _check(_quote(), channel_address=checksum(b"\xdd" * 20))


def test_an_expired_quote_is_refused_from_its_expiry_on() -> None:
    _check(_quote(), now=NOW + 59)
    with pytest.raises(errors.QuoteExpired):
        _check(_quote(), now=NOW + 60)


def test_a_payment_of_another_asset_or_amount_cannot_use_the_quote() -> None:
    with pytest.raises(errors.InvalidQuote):
        _check(_quote(), amount=10**18 + 1)
    with pytest.raises(errors.InvalidQuote):
        _check(_quote(), asset_id=ETH)


def test_the_json_form_round_trips_and_malformed_quotes_are_typed_errors() -> None:
    quote = _quote()
    assert quote_from_json(json.loads(json.dumps(quote_to_json(quote)))) == quote
    good = quote_to_json(quote)
    for bad in [None, [], {**good, "amountOut": "-1"}, {**good, "amountOut": 5},
                {**good, "amountOut": "1e3"}, {**good, "amountOut": "²"},
                {**good, "amountOut": str(2**256)}, {**good, "payer": PAYER.address.lower()},
                {**good, "signature": "0x00"}, {k: v for k, v in good.items() if k != "fee"}]:
        with pytest.raises(errors.InvalidQuote):
            quote_from_json(bad)


# --- configuration and rate sources ---------------------------------------------------------


def test_rates_are_exact_and_floats_are_refused() -> None:
    assert parse_rate("0.0005") == Fraction(1, 2000)
    assert parse_rate("1/3") == Fraction(1, 3)
    for bad in [0.0005, "-1", "0", "1e-3", "nan", "", True]:
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_swap_configuration_from_the_environment() -> None:
    config = SwapConfig.from_env({
        "CONNEXT_ASSETS": json.dumps({"ETH": {"address": ETH, "decimals": 18},
                                      "USDC": {"address": TEST, "decimals": 6}}),
        "CONNEXT_SWAPS": json.dumps([{"from": "ETH", "to": "USDC", "rate": "2000",
                                      "feeBps": 30, "fee": "100"},
                                     {"from": "USDC", "to": "ETH"}]),
        "CONNEXT_RATES_SOURCE": "/tmp/rates.json", "CONNEXT_QUOTE_TTL": "30",
    })
    config.check()
    assert config.pairs[0] == PairConfig("ETH", "USDC", Fraction(2000), 100, 30)
    assert config.pairs[1].rate is None and config.quote_ttl == 30
    for broken in [
        {"CONNEXT_SWAPS": json.dumps([{"from": "ETH", "to": "DAI", "rate": "1"}])},
        {"CONNEXT_SWAPS": json.dumps([{"from": "ETH", "to": "ETH", "rate": "1"}])},
        {"CONNEXT_SWAPS": json.dumps([{"from": "ETH", "to": "TEST"}])},  # no rate, no feed
        {"CONNEXT_SWAPS": json.dumps([{"from": "ETH", "to": "TEST", "rate": "1",
                                       "feeBps": 10_000}])},
    ]:
        with pytest.raises(ValueError):
            SwapConfig.from_env(broken).check()


def test_feed_rates_refresh_and_age_out(tmp_path: Path) -> None:
    feed_file = tmp_path / "rates.json"
    feed_file.write_text(json.dumps({"TEST/ETH": "0.0005"}))
    clock = [100.0]
    feed = FeedRates(str(feed_file), interval=1, max_age=10, clock=lambda: clock[0])
    assert feed.rate("TEST/ETH") is None  # never read
    feed.refresh()
    assert feed.rate("TEST/ETH") == Fraction(1, 2000)
    feed_file.write_text(json.dumps({"TEST/ETH": "0.0004"}))
    feed.refresh()
    assert feed.rate("TEST/ETH") == Fraction(1, 2500)
    feed_file.write_text("{not json")
    with pytest.raises(ValueError):
        feed.refresh()
    assert feed.rate("TEST/ETH") == Fraction(1, 2500)  # kept ...
    clock[0] += 11
    assert feed.rate("TEST/ETH") is None  # ... until it is too old to quote
    rates = ConfiguredRates(FixedRates({"ETH/TEST": Fraction(2000)}), feed)
    assert rates.rate("ETH/TEST") == 2000 and rates.rate("TEST/ETH") is None
