"""Swaps from the payer's side: ask the node for a quote, check it, and the meta that makes
a payment carry it (to another user, or to ourselves: a swap in our own channel).

A quote is checked before it is used: signed by our node for our channel and the terms we
asked for, not yet expired. The node checks it again (and that it is unused) before it
countersigns the payment; it never pays the recipient more than the quote's amount out.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..protocol import errors
from ..protocol.swaps import SwapQuote, check_quote, quote_from_json, quote_to_json
from ..protocol.types import Address

if TYPE_CHECKING:
    from .client import Client

QUOTE = "quote"
RECIPIENT_ASSET = "recipientAsset"


async def request_quote(client: Client, asset_in: Address, asset_out: Address,
                        amount_in: int, *, ttl: int | None = None) -> SwapQuote:
    """The node's signed quote for paying `amount_in` of `asset_in` so that the recipient
    gets `asset_out`; `InvalidQuote` if what came back is not that."""
    body: dict[str, Any] = {"assetIn": asset_in, "assetOut": asset_out,
                            "amountIn": str(amount_in)}
    if ttl is not None:
        body["ttl"] = ttl
    reply = await client._request("swap.quote", body)
    quote = quote_from_json(reply.get("quote"))
    check_quote(quote, node=client.node_address, chain_id=client.network.chain_id,
                payer=client.address, channel_address=client.channel_address,
                asset_id=asset_in, amount=amount_in, now=int(time.time()))
    if quote.asset_out != asset_out:
        raise errors.InvalidQuote("the node quoted another asset out than asked")
    return quote


def quote_meta(quote: SwapQuote, asset_id: Address, amount: int) -> dict[str, Any]:
    """The meta a payment of `amount` `asset_id` carries to be paid out at `quote`."""
    if quote.asset_in != asset_id or quote.amount_in != amount:
        raise errors.InvalidQuote("the payment must pay the quote's asset and amount in")
    return {QUOTE: quote_to_json(quote), RECIPIENT_ASSET: quote.asset_out}
