"""Assets the wallet shows, and amounts typed by people.

Inside, amounts are integers in base units; decimals exist only here, at the edge. Every
parse error is a sentence a user can act on (it is shown next to the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_utils.address import is_hex_address, to_checksum_address

from connext.protocol.types import ETH, Address


class InputError(ValueError):
    """Bad user input; `field` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Asset:
    address: Address
    symbol: str
    decimals: int
    name: str

    def format(self, amount: int) -> str:
        """Base units -> "1.25" (no trailing zeros, no exponent)."""
        return format_units(amount, self.decimals)

    def parse(self, text: str | None, field: str = "amount") -> int:
        """A positive amount typed by a person -> base units."""
        raw = (text or "").strip()
        if not raw:
            raise InputError(field, "Enter an amount.")
        if "," in raw:  # "1,5" may mean 1.5 or 15: never guess with money
            raise InputError(field, "Write the amount without commas, with a dot for "
                                    "decimals (like 1.5).")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", raw):
            raise InputError(field, "Enter the amount as a number, like 1.5.")
        sign, digits = (raw[0], raw[1:]) if raw[0] in "+-" else ("", raw)
        whole, _, frac = digits.partition(".")
        frac = frac.rstrip("0")
        units = int(whole or "0") * int(10**self.decimals)
        if len(frac) > self.decimals:
            if sign == "-":
                raise InputError(field, "The amount must be more than zero.")
            raise InputError(field, f"{self.symbol} has at most {self.decimals} decimals.")
        units += int(frac.ljust(self.decimals, "0") or "0")
        if units == 0 or sign == "-":
            raise InputError(field, "The amount must be more than zero.")
        if units >= 2**255:
            raise InputError(field, "That amount is too large.")
        return units


def format_units(amount: int, decimals: int) -> str:
    """`amount` base units of an asset with `decimals` -> "1.25" (exact: no trailing zeros,
    no exponent)."""
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    text = f"{frac:0{decimals}d}".rstrip("0")
    return f"{sign}{whole}" + (f".{text}" if text else "")


ETHER = Asset(ETH, "ETH", 18, "Ether")


def parse_address(text: str | None, field: str = "recipient") -> Address:
    raw = (text or "").strip()
    if not raw:
        raise InputError(field, "Enter an address.")
    if not raw.startswith(("0x", "0X")) or not is_hex_address(raw):
        raise InputError(field, "That is not an Ethereum address (0x followed by 40 hex "
                                "characters).")
    if raw != raw.lower() and raw[2:] != raw[2:].upper() and to_checksum_address(raw) != raw:
        raise InputError(field, "That address has a typo (its checksum does not match).")
    return Address(to_checksum_address(raw))
