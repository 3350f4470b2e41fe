"""The node's swap settings: the assets it supports and the pairs it swaps, from the
environment (docs/NODE.md, "Assets and swaps").

`CONNEXT_ASSETS` names the assets ({symbol: {address, decimals}}; the address
"testToken" stands for the deployment's test token), `CONNEXT_SWAPS` the pairs it swaps
(from, to, a fixed rate or none to take it from the rate feed, fees), `CONNEXT_RATES_SOURCE`
a file or URL of rates the operator controls. Nothing here reads the chain or the feed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..protocol.swaps import BPS
from ..protocol.types import ETH

TEST_TOKEN_PLACEHOLDER = "testToken"
"""An asset address in CONNEXT_ASSETS meaning "the deployment's test token"."""


@dataclass(frozen=True)
class AssetConfig:
    symbol: str
    address: str
    """Checksummed address, or TEST_TOKEN_PLACEHOLDER until the deployment is known."""
    decimals: int


@dataclass(frozen=True)
class PairConfig:
    """The node swaps `sell` (paid in) for `buy` (paid out) at `rate` units of `buy` per
    unit of `sell` (None: the rate feed's "SELL/BUY"), keeping `fee_fixed` (base units
    of `buy`) plus `fee_bps` basis points of the amount out."""

    sell: str
    buy: str
    rate: Fraction | None = None
    fee_fixed: int = 0
    fee_bps: int = 0

    @property
    def name(self) -> str:
        return f"{self.sell}/{self.buy}"


DEFAULT_ASSETS: tuple[AssetConfig, ...] = (
    AssetConfig("ETH", ETH, 18), AssetConfig("TEST", TEST_TOKEN_PLACEHOLDER, 18))


@dataclass(frozen=True)
class SwapConfig:
    assets: tuple[AssetConfig, ...] = DEFAULT_ASSETS
    pairs: tuple[PairConfig, ...] = ()
    rates_source: str | None = None
    """A file path or http(s) URL with {"SELL/BUY": "rate", ...} (JSON), re-read every
    `rates_interval` seconds; a rate older than `rates_max_age` is not quoted."""
    rates_interval: float = 30.0
    rates_max_age: float = 300.0
    quote_ttl: int = 60
    """Seconds a quote stays valid (a payer may ask for less)."""
    quotes_per_hour: int = 3600
    """Quotes one identity may ask for per hour (0: no limit)."""
    claim_window: int = 900
    """A swapped payment's forward expires at most this many seconds after it is made:
    a recipient cannot hold it for the payment's whole timeout and claim it or refuse it
    as the price moves (at most this long an option on the price). Keep it above the
    clients' reveal margin (300 s by default)."""

    def check(self) -> None:
        symbols = [a.symbol for a in self.assets]
        if len(set(symbols)) != len(symbols):
            raise ValueError("CONNEXT_ASSETS names a symbol twice")
        for asset in self.assets:
            if not 0 <= asset.decimals <= 36:
                raise ValueError(f"CONNEXT_ASSETS: {asset.symbol} decimals must be 0..36")
        seen = set()
        for pair in self.pairs:
            if pair.sell not in symbols or pair.buy not in symbols:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} names an asset that is not in "
                                 "CONNEXT_ASSETS")
            if pair.sell == pair.buy:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} swaps an asset for itself")
            if pair.name in seen:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} is given twice")
            seen.add(pair.name)
            if pair.rate is not None and pair.rate <= 0:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} needs a positive rate")
            if pair.rate is None and self.rates_source is None:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} has no rate and there is no "
                                 "CONNEXT_RATES_SOURCE")
            if pair.fee_fixed < 0 or not 0 <= pair.fee_bps < BPS:
                raise ValueError(f"CONNEXT_SWAPS: {pair.name} fees must be >= 0 (bps < 10000)")
        if (self.quote_ttl <= 0 or self.rates_interval <= 0 or self.rates_max_age <= 0
                or self.claim_window <= 0):
            raise ValueError("CONNEXT_QUOTE_TTL, CONNEXT_RATES_INTERVAL, "
                             "CONNEXT_RATES_MAX_AGE and CONNEXT_SWAP_CLAIM_WINDOW must be "
                             "positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SwapConfig:
        assets: tuple[AssetConfig, ...] = DEFAULT_ASSETS
        if env.get("CONNEXT_ASSETS"):
            # {"ETH": {"address": "0x00..00", "decimals": 18}, "TEST": {"address": "testToken"}}
            assets = tuple(
                AssetConfig(symbol, str(given["address"]), int(given.get("decimals", 18)))
                for symbol, given in json.loads(env["CONNEXT_ASSETS"]).items()
            )
        pairs: tuple[PairConfig, ...] = ()
        if env.get("CONNEXT_SWAPS"):
            # [{"from": "TEST", "to": "ETH", "rate": "0.0005", "feeBps": 30, "fee": "0"}]
            pairs = tuple(
                PairConfig(
                    sell=str(given["from"]), buy=str(given["to"]),
                    rate=None if given.get("rate") in (None, "") else parse_rate(given["rate"]),
                    fee_fixed=int(given.get("fee", 0)), fee_bps=int(given.get("feeBps", 0)),
                )
                for given in json.loads(env["CONNEXT_SWAPS"])
            )
        return cls(
            assets=assets,
            pairs=pairs,
            rates_source=env.get("CONNEXT_RATES_SOURCE") or None,
            rates_interval=float(env.get("CONNEXT_RATES_INTERVAL", str(cls.rates_interval))),
            rates_max_age=float(env.get("CONNEXT_RATES_MAX_AGE", str(cls.rates_max_age))),
            quote_ttl=int(env.get("CONNEXT_QUOTE_TTL", str(cls.quote_ttl))),
            quotes_per_hour=int(env.get("CONNEXT_QUOTES_PER_HOUR", str(cls.quotes_per_hour))),
            claim_window=int(env.get("CONNEXT_SWAP_CLAIM_WINDOW", str(cls.claim_window))),
        )


def parse_rate(value: Any) -> Fraction:
    """A rate as an exact fraction: a decimal string ("0.0005"), a ratio ("1/2000") or an
    integer. Floats are refused (0.1 is not 0.1 in binary)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"a rate is a decimal string, not {value!r}")
    text = str(value).strip()
    if not text or not all(c.isascii() and (c.isdigit() or c in "./") for c in text):
        raise ValueError(f"not a rate: {value!r}")
    rate = Fraction(text)
    if rate <= 0:
        raise ValueError(f"a rate must be positive: {value!r}")
    return rate
