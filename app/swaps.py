"""What the wallet shows about swaps beside the SDK: the node's supported assets and pairs
(from its public /config, read again at most every few seconds), and a quote as the Send
and Cash out screens show it (amounts in the assets' decimals, the expiry as a time).

The quote itself is the node's signed object; a form carries it back as JSON, and whatever
a browser does to it, the node checks it again (an altered quote is refused, not paid).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connext.protocol import errors
from connext.protocol.swaps import SwapQuote, quote_from_json, quote_to_json
from connext.protocol.types import Address

from .assets import Asset

NODE_CONFIG_FRESH = 10.0
"""Seconds the node's pairs are kept before /config is read again."""


class NodeSwaps:
    """The node's swap menu, cached briefly (the node may change its rates)."""

    def __init__(self, node_url: str) -> None:
        self.node_url = node_url.rstrip("/")
        self._read_at = 0.0
        self._config: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        if time.monotonic() - self._read_at > NODE_CONFIG_FRESH:
            try:
                with urllib.request.urlopen(f"{self.node_url}/config", timeout=5) as response:
                    self._config = json.loads(response.read())
                self._read_at = time.monotonic()
            except Exception:
                return self._config  # the node is down: what we knew (or nothing)
        return self._config

    def assets(self) -> list[dict[str, Any]]:
        """[{symbol, address, decimals}] the node supports."""
        return [a for a in self.config().get("assets", []) if isinstance(a, dict)]

    def pairs(self) -> set[tuple[Address, Address]]:
        """(asset in, asset out) the node swaps."""
        return {(p["assetIn"], p["assetOut"]) for p in self.config().get("swaps", [])
                if isinstance(p, dict) and p.get("rate") is not None}

    def deliverable(self, assets: list[Asset]) -> list[Asset]:
        """The assets a payment can deliver in something else than it pays with."""
        outs = {out for _in, out in self.pairs()}
        return [a for a in assets if a.address in outs]


@dataclass(frozen=True)
class QuoteView:
    quote: SwapQuote
    pay: Asset
    deliver: Asset

    @property
    def pay_text(self) -> str:
        return f"{self.pay.format(self.quote.amount_in)} {self.pay.symbol}"

    @property
    def deliver_text(self) -> str:
        return f"{self.deliver.format(self.quote.amount_out)} {self.deliver.symbol}"

    @property
    def fee_text(self) -> str:
        return f"{self.deliver.format(self.quote.fee)} {self.deliver.symbol}"

    @property
    def expiry_text(self) -> str:
        return datetime.fromtimestamp(self.quote.expiry, UTC).strftime("%H:%M:%S UTC")

    @property
    def seconds_left(self) -> int:
        return max(0, self.quote.expiry - int(time.time()))

    @property
    def form_value(self) -> str:
        """The quote as a form carries it (the node checks it again when it is used)."""
        return json.dumps(quote_to_json(self.quote), separators=(",", ":"))


def quote_of_form(value: str | None) -> SwapQuote:
    """The quote a review form carried; `InvalidQuote` when it is not one."""
    try:
        data = json.loads(value or "")
    except ValueError:
        raise errors.InvalidQuote("the quote is missing; review the payment again") from None
    return quote_from_json(data)
