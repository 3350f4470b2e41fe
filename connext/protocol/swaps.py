"""Swap quotes: what a node promises to pay out in one asset for a payment in another.

A quote names the payer and its channel, the assets and amounts in and out, the node's fee
(in the asset out, already taken from the amount out) and an expiry, signed by the node
under its own EIP-712 type (`encoding.swap_quote_digest`). Amounts are integers in base
units; the amount out is computed from a rate with integer arithmetic that rounds in the
node's favour (the gross amount down, the fee up), so a payer never gets more than quoted.
Pure: no clock (the caller passes `now`), no I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from . import errors
from .encoding import checksum, swap_quote_digest
from .signing import Signer, recover_address_bytes
from .types import Address

MAX_AMOUNT = 2**256 - 1
BPS = 10_000
"""Fees in basis points: 30 bps is 0.3 %."""


@dataclass(frozen=True)
class SwapQuote:
    quote_id: bytes
    node: Address
    chain_id: int
    payer: Address
    channel_address: Address
    asset_in: Address
    asset_out: Address
    amount_in: int
    amount_out: int
    """What the recipient receives (the fee already taken)."""
    fee: int
    """The node's fee in the asset out."""
    expiry: int
    """Unix seconds; the quote pays only a payment created before it."""
    signature: bytes = b""

    def digest(self) -> bytes:
        return swap_quote_digest(self.chain_id, self.node, self.quote_id, self.payer,
                                 self.channel_address, self.asset_in, self.asset_out,
                                 self.amount_in, self.amount_out, self.fee, self.expiry)

    def signed_by(self, signer: Signer) -> SwapQuote:
        return replace(self, signature=signer.sign(self.digest()))


def base_rate(rate: Fraction, decimals_in: int, decimals_out: int) -> Fraction:
    """A rate in whole units (1 TEST = 0.0005 ETH) as base units out per base unit in."""
    if rate <= 0:
        raise errors.RateUnavailable("a rate must be positive")
    return rate * Fraction(10**decimals_out, 10**decimals_in)


def amount_out_for(amount_in: int, rate: Fraction, *, fee_fixed: int = 0,
                   fee_bps: int = 0) -> tuple[int, int]:
    """(amount out, fee) for `amount_in` at `rate` (base units out per base unit in).

    The gross amount is rounded down and the fee (`fee_fixed` + `fee_bps` of the gross)
    up: any rounding goes to the node, never to the payer. `InvalidAmount` when nothing is
    left after the fee."""
    if not 0 < amount_in <= MAX_AMOUNT:
        raise errors.InvalidAmount("the amount to swap must be positive and fit 256 bits")
    if rate <= 0 or fee_fixed < 0 or not 0 <= fee_bps < BPS:
        raise errors.RateUnavailable("the pair's rate or fee is not usable")
    gross = amount_in * rate.numerator // rate.denominator
    fee = fee_fixed + -(-gross * fee_bps // BPS)
    if gross <= fee:
        raise errors.InvalidAmount("the amount does not cover the node's swap fee")
    out = gross - fee
    if out > MAX_AMOUNT:
        raise errors.InvalidAmount("the amount out does not fit 256 bits")
    return out, fee


@functools.lru_cache(maxsize=4096)
def _signer_of(digest: bytes, signature: bytes) -> bytes:
    """Who signed a quote (b"" for no one): the node checks one quote when it countersigns
    the payment, when it routes it and when it records it, a recovery each without this."""
    try:
        return recover_address_bytes(digest, signature)
    except errors.InvalidSignature:
        return b""


def check_quote(quote: SwapQuote, *, node: Address, chain_id: int, payer: Address,
                channel_address: Address, asset_id: Address, amount: int, now: int) -> None:
    """Refuse a quote this payment may not use (typed errors, in this order): not the
    node's signature over these very terms (`QuoteAltered`), for another payer or channel
    (`QuoteForeign`), expired (`QuoteExpired`), or for another asset or amount in than the
    payment's (`InvalidQuote`). That it is unused is the node's store to say."""
    if quote.node != node or quote.chain_id != chain_id:
        raise errors.QuoteAltered("the quote is not this node's")
    if _signer_of(quote.digest(), quote.signature) != bytes.fromhex(node[2:]):
        raise errors.QuoteAltered("the quote is not the node's signature over these terms")
    if quote.payer != payer or quote.channel_address != channel_address:
        raise errors.QuoteForeign("the node quoted this swap for another payer")
    if now >= quote.expiry:
        raise errors.QuoteExpired("the quote has expired: ask for a new one")
    if quote.asset_in != asset_id or quote.amount_in != amount:
        raise errors.InvalidQuote("the payment does not pay the quote's asset and amount in")


# --- JSON (the wire and the meta of a payment) ----------------------------------------------


def quote_to_json(quote: SwapQuote) -> dict[str, str]:
    return {
        "quoteId": "0x" + quote.quote_id.hex(), "node": quote.node,
        "chainId": str(quote.chain_id), "payer": quote.payer,
        "channelAddress": quote.channel_address, "assetIn": quote.asset_in,
        "assetOut": quote.asset_out, "amountIn": str(quote.amount_in),
        "amountOut": str(quote.amount_out), "fee": str(quote.fee),
        "expiry": str(quote.expiry), "signature": "0x" + quote.signature.hex(),
    }


def quote_from_json(data: Any) -> SwapQuote:
    """A quote from its JSON form; `InvalidQuote` on anything malformed (the signature is
    not checked here: `check_quote` does)."""
    if not isinstance(data, dict):
        raise errors.InvalidQuote("a quote is a JSON object")
    try:
        return SwapQuote(
            quote_id=_hex(data["quoteId"], 32),
            node=_address(data["node"]),
            chain_id=_uint(data["chainId"]),
            payer=_address(data["payer"]),
            channel_address=_address(data["channelAddress"]),
            asset_in=_address(data["assetIn"]),
            asset_out=_address(data["assetOut"]),
            amount_in=_uint(data["amountIn"]),
            amount_out=_uint(data["amountOut"]),
            fee=_uint(data["fee"]),
            expiry=_uint(data["expiry"]),
            signature=_hex(data["signature"], 65),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.InvalidQuote(f"malformed quote: {exc}") from None


def _hex(value: Any, size: int) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 2 + 2 * size:
        raise ValueError(f"expected {size} bytes of 0x-hex")
    return bytes.fromhex(value[2:])


def _address(value: Any) -> Address:
    raw = _hex(value, 20)
    address = checksum(raw)
    if value != address:
        raise ValueError(f"{value!r} is not a checksummed address")
    return address


def _uint(value: Any) -> int:
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 78:
        raise ValueError("expected a decimal string")
    number = int(value)
    if number > MAX_AMOUNT:
        raise ValueError("does not fit 256 bits")
    return number
