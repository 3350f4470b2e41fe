"""Where the node's swap rates come from: fixed in its configuration, or a price feed.

`RateSource` is what quoting needs: the current rate of a pair ("SELL/BUY", units of BUY
per unit of SELL, an exact fraction) or None when there is none fresh enough. `FeedRates`
reads a JSON object {"TEST/ETH": "0.0005", ...} from a file or an http(s) URL the operator
controls, every `interval` seconds; a rate it could not refresh for `max_age` seconds is not
quoted (a stale price is an arbitrage for the payer). A real price service plugs in as
another `RateSource`. Rates never come from a payer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from .swapconfig import parse_rate

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 1 << 20


class RateSource(Protocol):
    def rate(self, pair: str) -> Fraction | None:
        """Units of BUY per unit of SELL for "SELL/BUY", or None (unknown or stale)."""


class FixedRates:
    """Rates that never change (CONNEXT_SWAPS with a `rate`)."""

    def __init__(self, rates: Mapping[str, Fraction]) -> None:
        self.rates = dict(rates)

    def rate(self, pair: str) -> Fraction | None:
        return self.rates.get(pair)


class FeedRates:
    """Rates read from a file or URL, refreshed on an interval (`run`)."""

    def __init__(self, source: str, *, interval: float, max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.interval = interval
        self.max_age = max_age
        self.clock = clock
        self._rates: dict[str, Fraction] = {}
        self._read_at: float | None = None

    def rate(self, pair: str) -> Fraction | None:
        if self._read_at is None or self.clock() - self._read_at > self.max_age:
            return None
        return self._rates.get(pair)

    def refresh(self) -> None:
        """Read the feed once (blocking); a feed that fails to read or parse keeps the
        rates read before, which then age out after `max_age`."""
        raw = self._read()
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a rate feed is a JSON object {\"SELL/BUY\": \"rate\"}")
        rates = {}
        for pair, value in data.items():
            if not isinstance(pair, str) or pair.count("/") != 1:
                raise ValueError(f"not a pair: {pair!r}")
            rates[pair] = parse_rate(value)
        self._rates = rates
        self._read_at = self.clock()

    def _read(self) -> bytes:
        if self.source.startswith(("http://", "https://")):
            with urllib.request.urlopen(self.source, timeout=10) as response:
                return bytes(response.read(MAX_FEED_BYTES))
        return Path(self.source).read_bytes()[:MAX_FEED_BYTES]

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:
                log.warning("rate feed %s could not be read: %s", self.source, exc)
            await asyncio.sleep(self.interval)


class ConfiguredRates:
    """A pair's fixed rate if it has one, else the feed's."""

    def __init__(self, fixed: FixedRates, feed: FeedRates | None) -> None:
        self.fixed = fixed
        self.feed = feed

    def rate(self, pair: str) -> Fraction | None:
        rate = self.fixed.rate(pair)
        if rate is None and self.feed is not None:
            rate = self.feed.rate(pair)
        return rate
