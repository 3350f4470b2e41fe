"""The node's swap desk: the assets it supports, quotes it signs, and the checks a payment
that carries a quote must pass before the node countersigns it.

A payer asks for a quote (`swap.quote`: asset in, asset out, amount in); the desk prices it
from the pair's rate (fixed, or the operator's feed) less the pair's fee, in integer math
that rounds for the node, and signs it for that payer and channel only. A routed payment
(or a swap into one's own channel: a payment to oneself) carries the quote in its meta;
the router then forwards the quote's asset and amount out, never more. The desk refuses,
before anything is signed: a quote not signed by this node as it stands (altered), for
another payer or channel (foreign), expired, for another amount or asset than the payment,
or used before (the store marks it used with the payment that took it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import errors
from ..protocol.encoding import checksum
from ..protocol.signing import Signer
from ..protocol.swaps import (
    SwapQuote,
    amount_out_for,
    base_rate,
    check_quote,
    quote_from_json,
    quote_to_json,
)
from ..protocol.types import Address, Transfer
from ..store import ChannelStore
from .config import AssetLimits, CollateralProfile
from .policy import RateLimit
from .rates import ConfiguredRates, FeedRates, FixedRates
from .swapconfig import TEST_TOKEN_PLACEHOLDER, PairConfig, SwapConfig

QUOTE = "quote"
"""Meta key of a payment's swap quote (its JSON form)."""
log = logging.getLogger(__name__)

RECIPIENT_ASSET = "recipientAsset"
"""Meta key of the asset the recipient is to receive (the quote's asset out)."""


@dataclass(frozen=True)
class Asset:
    symbol: str
    address: Address
    decimals: int


class SwapDesk:
    def __init__(
        self,
        config: SwapConfig,
        signer: Signer,
        *,
        chain_id: int,
        test_token: str | None,
        store: ChannelStore,
        hashlock: Address,
        limits_for: Callable[[Address], AssetLimits],
        collateral_for: Callable[[Address], CollateralProfile],
        channel_address_for: Callable[[Address], Address],
    ) -> None:
        config.check()
        self.config = config
        self.signer = signer
        self.address = signer.address
        self.chain_id = chain_id
        self.store = store
        self.hashlock = hashlock
        self.limits_for = limits_for
        self.collateral_for = collateral_for
        self.channel_address_for = channel_address_for
        self.assets: dict[str, Asset] = {}
        for asset in config.assets:
            address = test_token if asset.address == TEST_TOKEN_PLACEHOLDER else asset.address
            if address is None:
                continue  # no test token on this chain
            self.assets[asset.symbol] = Asset(asset.symbol, checksum(address), asset.decimals)
        self.by_address = {asset.address: asset for asset in self.assets.values()}
        self.pairs: dict[tuple[Address, Address], PairConfig] = {
            (self.assets[p.sell].address, self.assets[p.buy].address): p
            for p in config.pairs if p.sell in self.assets and p.buy in self.assets
        }
        self.feed = None if config.rates_source is None else FeedRates(
            config.rates_source, interval=config.rates_interval, max_age=config.rates_max_age)
        self.rates = ConfiguredRates(
            FixedRates({p.name: p.rate for p in config.pairs if p.rate is not None}), self.feed)
        self.quotes = RateLimit(config.quotes_per_hour, "swap quotes")

    async def run(self) -> None:
        """Refresh the rate feed on its interval (nothing to do with fixed rates only)."""
        if self.feed is not None:
            await self.feed.run()

    async def start(self) -> None:
        """Read the rate feed once before serving (a failure is logged by `run`'s loop)."""
        if self.feed is not None:
            try:
                await asyncio.to_thread(self.feed.refresh)
            except Exception as exc:
                log.warning("rate feed %s could not be read: %s", self.feed.source, exc)

    def info(self) -> dict[str, Any]:
        """The supported assets and pairs with their current rates (node.info)."""
        pairs = []
        for (sell, buy), pair in self.pairs.items():
            rate = self.rates.rate(pair.name)
            pairs.append({
                "from": pair.sell, "to": pair.buy, "assetIn": sell, "assetOut": buy,
                "rate": None if rate is None else _fraction_text(rate),
                "fee": str(pair.fee_fixed), "feeBps": pair.fee_bps,
            })
        return {
            "assets": [{"symbol": a.symbol, "address": a.address, "decimals": a.decimals}
                       for a in self.assets.values()],
            "swaps": pairs,
            "quoteTtl": self.config.quote_ttl,
        }

    # --- quoting ---------------------------------------------------------------------------

    def quote(self, payer: Address, asset_in: Address, asset_out: Address, amount_in: int, *,
              ttl: int | None = None, now: int | None = None) -> SwapQuote:
        """A signed quote for `payer`'s channel: `amount_in` of `asset_in` pays the
        recipient the amount out of `asset_out` (after the fee) until the expiry."""
        self.quotes.check(payer)
        pair = self.pairs.get((asset_in, asset_out))
        if pair is None:
            raise errors.UnsupportedSwap(f"the node does not swap {asset_in} for {asset_out}")
        rate = self.rates.rate(pair.name)
        if rate is None:
            raise errors.RateUnavailable(f"no fresh rate for {pair.name} right now")
        sell, buy = self.by_address[asset_in], self.by_address[asset_out]
        amount_out, fee = amount_out_for(
            amount_in, base_rate(rate, sell.decimals, buy.decimals),
            fee_fixed=pair.fee_fixed, fee_bps=pair.fee_bps)
        if amount_in < self.limits_for(asset_in).min_payment:
            raise errors.AmountBelowMinimum(
                f"the node routes payments of at least {self.limits_for(asset_in).min_payment}")
        if amount_out < self.limits_for(asset_out).min_payment:
            raise errors.AmountBelowMinimum("the amount out is below the node's minimum payment")
        cap = self.collateral_for(asset_out).cap
        if amount_out > cap:
            raise errors.InsufficientCollateral(
                f"the node pays out at most {cap} of {buy.symbol} in one channel")
        lifetime = self.config.quote_ttl if ttl is None else min(max(ttl, 1),
                                                                 self.config.quote_ttl)
        issued = int(time.time()) if now is None else now
        return SwapQuote(
            quote_id=os.urandom(32), node=self.address, chain_id=self.chain_id, payer=payer,
            channel_address=self.channel_address_for(payer), asset_in=asset_in,
            asset_out=asset_out, amount_in=amount_in, amount_out=amount_out, fee=fee,
            expiry=issued + lifetime,
        ).signed_by(self.signer)

    # --- payments carrying a quote ------------------------------------------------------

    def quote_of(self, transfer: Transfer) -> SwapQuote | None:
        """The quote a payment to the node carries (None: a payment in one asset), checked
        to be this node's signature; `InvalidQuote` (or a subclass) otherwise. The router
        forwards by it; the policy checked the rest when the payment was created."""
        raw = transfer.meta.get(QUOTE)
        if raw is None:
            return None
        quote = quote_from_json(raw)
        # the expiry counted when the payment was created (the policy); the router
        # decides what a quote that expired since means for the forward
        check_quote(quote, node=self.address, chain_id=self.chain_id,
                    payer=transfer.initiator, channel_address=transfer.channel_address,
                    asset_id=transfer.asset_id, amount=transfer.balance.amount[0],
                    now=quote.expiry - 1)
        return quote

    def terms_of(self, transfer: Transfer) -> SwapQuote | None:
        """`quote_of` that never raises (None for anything that is not a valid quote):
        what the routing record notes."""
        try:
            return self.quote_of(transfer)
        except errors.ProtocolError:
            return None

    async def check_payment(self, transfer: Transfer, routing_id: bytes | None) -> None:
        """The policy's check of a routed payment to us, before we countersign it."""
        meta = transfer.meta
        raw = meta.get(QUOTE)
        wanted = meta.get(RECIPIENT_ASSET)
        if raw is None:
            if wanted is not None and wanted != transfer.asset_id:
                raise errors.UnsupportedSwap("a payment that delivers another asset needs a "
                                             "swap quote")
            return
        quote = quote_from_json(raw)
        check_quote(quote, node=self.address, chain_id=self.chain_id,
                    payer=transfer.initiator, channel_address=transfer.channel_address,
                    asset_id=transfer.asset_id, amount=transfer.balance.amount[0],
                    now=int(time.time()))
        if wanted is not None and wanted != quote.asset_out:
            raise errors.InvalidQuote("the payment asks for another asset than its quote")
        if transfer.transfer_definition != self.hashlock or "link" in meta:
            raise errors.InvalidQuote("only a hashlock payment to a recipient can swap")
        if quote.asset_out not in self.by_address:
            raise errors.UnsupportedSwap("the node no longer pays out this asset")
        used = await self.store.run(
            self.store.use_quote, quote.quote_id, channel_address=transfer.channel_address,
            transfer_id=transfer.transfer_id, routing_id=routing_id,
            quote=quote_to_json(quote))
        if not used:
            raise errors.QuoteUsed("this quote has paid already: ask for a new one")


def _fraction_text(value: Any) -> str:
    return str(value.numerator) if value.denominator == 1 else (
        f"{value.numerator}/{value.denominator}")
