"""Amounts and addresses typed by people: what the forms accept and the messages they show."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.assets import ETHER, Asset, InputError, parse_address

USDC = Asset("0x" + "11" * 20, "USDC", 6, "USD Coin")


@pytest.mark.parametrize(("text", "units"), [
    ("1", 10**18), ("0.5", 5 * 10**17), (".25", 25 * 10**16),
    (" 2.000 ", 2 * 10**18), ("0.000000000000000001", 1),
])
def test_amounts_parse_to_base_units(text: str, units: int) -> None:
    assert ETHER.parse(text) == units


@pytest.mark.parametrize(("text", "message"), [
    ("", "Enter an amount."), ("   ", "Enter an amount."), (None, "Enter an amount."),
    ("abc", "Enter the amount as a number, like 1.5."), ("1e3", "Enter the amount as a number"),
    ("0x10", "Enter the amount as a number"), ("nan", "Enter the amount as a number"),
    ("1,5", "Write the amount without commas"), ("1,000", "Write the amount without commas"),
    ("0", "The amount must be more than zero."), ("-1", "The amount must be more than zero."),
    ("0.0000001", "USDC has at most 6 decimals."),
    ("1" * 80, "That amount is too large."),
])
def test_bad_amounts_get_a_sentence(text: str | None, message: str) -> None:
    with pytest.raises(InputError) as caught:
        USDC.parse(text)
    assert caught.value.message.startswith(message)
    assert caught.value.field == "amount"


@given(st.integers(min_value=1, max_value=2**200))
def test_format_and_parse_round_trip(units: int) -> None:
    for asset in (ETHER, USDC):
        assert asset.parse(asset.format(units)) == units


def test_addresses_are_checked_and_checksummed() -> None:
    lower = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    assert parse_address(lower) == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert parse_address(" 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 ").startswith("0x7099")
    for bad, message in [("", "Enter an address."), ("0x1234", "not an Ethereum address"),
                         ("70997970c51812dc3a010c7d01b50e0d17dc79c8", "not an Ethereum"),
                         ("0x70997970C51812dc3A010C7d01b50e0d17dc79c8", "checksum")]:
        with pytest.raises(InputError, match=message):
            parse_address(bad)
