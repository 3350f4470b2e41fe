"""Swap quotes in the node's books: a quote is used by one transfer of one channel, once,
also under concurrent attempts; a swap's asset and amount out go with its routing record."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from connext.protocol.types import ETH
from connext.store import ChannelStore, NewRouting

from .builders import TOKEN

CHANNEL = "0x" + "11" * 20
OTHER_CHANNEL = "0x" + "22" * 20
QUOTE = {"quoteId": "0x" + "ab" * 32, "amountOut": "5"}


def test_a_quote_is_used_by_one_transfer_and_again_only_by_that_one(
    store: ChannelStore,
) -> None:
    quote_id, transfer_id, routing_id = os.urandom(32), os.urandom(32), os.urandom(32)
    assert store.use_quote(quote_id, channel_address=CHANNEL, transfer_id=transfer_id,
                           routing_id=routing_id, quote=QUOTE)
    # the same create again (a retransmission) is fine; anything else is a second use
    assert store.use_quote(quote_id, channel_address=CHANNEL, transfer_id=transfer_id,
                           routing_id=routing_id, quote=QUOTE)
    assert not store.use_quote(quote_id, channel_address=CHANNEL, transfer_id=os.urandom(32),
                               routing_id=None, quote=QUOTE)
    assert not store.use_quote(quote_id, channel_address=OTHER_CHANNEL,
                               transfer_id=transfer_id, routing_id=None, quote=QUOTE)
    use = store.quote_use(quote_id)
    assert use is not None
    assert (use["channelAddress"], use["transferId"], use["routingId"], use["quote"]) == (
        CHANNEL, "0x" + transfer_id.hex(), "0x" + routing_id.hex(), QUOTE)
    assert store.quote_use(os.urandom(32)) is None


def test_of_concurrent_uses_of_a_quote_exactly_one_wins(store: ChannelStore) -> None:
    quote_id = os.urandom(32)

    def attempt(_: int) -> bool:
        return store.use_quote(quote_id, channel_address=CHANNEL, transfer_id=os.urandom(32),
                               routing_id=None, quote=QUOTE)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1


def test_a_swap_routing_records_its_asset_and_amount_out(store: ChannelStore) -> None:
    routing_id = os.urandom(32)
    store.record_routing(NewRouting(routing_id, CHANNEL, os.urandom(32), TOKEN, 10**18, None,
                                    recipient_asset_id=ETH, recipient_amount=498))
    routing = store.get_routing(routing_id)
    assert routing is not None
    assert (routing.asset_id, routing.amount) == (TOKEN, 10**18)
    assert (routing.recipient_asset_id, routing.recipient_amount) == (ETH, 498)
