"""Operator records: collateral profiles per channel (set, replaced, forgotten, exact to
the wei above 2**64) and the reads of the books the admin API shows."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from connext.protocol.types import ETH
from connext.store import ChannelStore

from .builders import NODE, TOKEN, Channel, funded

CHANNEL = "0x" + "33" * 20
HUGE = 2**200 + 7


def test_a_channel_profile_is_set_replaced_and_forgotten(store: ChannelStore) -> None:
    assert store.channel_profiles() == []
    store.set_channel_profile(CHANNEL, ETH, threshold=1, target=10, reclaim_threshold=20,
                              cap=HUGE)
    store.set_channel_profile(CHANNEL, TOKEN, threshold=0, target=5, reclaim_threshold=5,
                              cap=5)
    replaced = store.set_channel_profile(CHANNEL, ETH, threshold=2, target=HUGE - 1,
                                         reclaim_threshold=HUGE, cap=HUGE)
    profiles = {p.asset_id: p for p in store.channel_profiles(CHANNEL)}
    assert set(profiles) == {ETH, TOKEN}
    assert profiles[ETH] == replaced
    assert (profiles[ETH].threshold, profiles[ETH].target, profiles[ETH].reclaim_threshold,
            profiles[ETH].cap) == (2, HUGE - 1, HUGE, HUGE)
    assert store.channel_profiles("0x" + "44" * 20) == []
    assert store.delete_channel_profile(CHANNEL, ETH) is True
    assert store.delete_channel_profile(CHANNEL, ETH) is False
    assert [p.asset_id for p in store.channel_profiles()] == [TOKEN]


def test_the_books_list_payments_newest_first_and_count_them(store: ChannelStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for amount in (1, 2, 3):
        routing_id = os.urandom(32)
        store.create_routing(routing_id=routing_id, sender_channel=CHANNEL,
                             sender_transfer_id=os.urandom(32), asset_id=ETH, amount=amount,
                             recipient=Channel().bob.address)
        ids.append(routing_id)
    store.update_routing_status(ids[1], "failed", error="no collateral")
    assert [r.routing_id for r in store.recent_routings()] == ids[::-1]
    failed = store.recent_routings(statuses=("failed",))
    assert [(r.amount, r.error) for r in failed] == [(2, "no collateral")]
    totals = {(t.asset_id, t.status): (t.payments, t.amount)
              for t in store.routing_totals(before)}
    assert totals == {(ETH, "pending"): (2, 4), (ETH, "failed"): (1, 2)}
    assert store.routing_totals(datetime.now(UTC) + timedelta(seconds=5)) == []
    assert store.routing_counts() == {"pending": 2, "failed": 1}
    assert store.channel_count(NODE.address) == 0
    funded(store)
    funded(store)
    assert store.channel_count(NODE.address) == 2


def test_totals_sum_uint256_amounts_exactly_per_asset_status_and_minute(
        store: ChannelStore) -> None:
    """The admin API's volume: sums above 2**256 (many near-maximal payments) are exact on
    both backends (SQLite keeps amounts as text), per minute as well as in all."""
    top = 2**256 - 1
    amounts = {ETH: [top, top, HUGE, 1, 10**18], TOKEN: [7, 10**30 + 3]}
    before = datetime.now(UTC) - timedelta(seconds=1)
    for asset, values in amounts.items():
        for i, amount in enumerate(values):
            routing_id = os.urandom(32)
            store.create_routing(routing_id=routing_id, sender_channel=CHANNEL,
                                 sender_transfer_id=os.urandom(32), asset_id=asset,
                                 amount=amount, recipient=Channel().bob.address)
            if i % 2 == 0:
                store.update_routing_status(routing_id, "resolved")
    after = datetime.now(UTC)
    expected = {
        (ETH, "resolved"): (3, top + HUGE + 10**18), (ETH, "pending"): (2, top + 1),
        (TOKEN, "resolved"): (1, 7), (TOKEN, "pending"): (1, 10**30 + 3),
    }
    assert {(t.asset_id, t.status): (t.payments, t.amount)
            for t in store.routing_totals(before)} == expected
    per_minute = store.routing_totals(before, by_minute=True)
    summed: dict[tuple[str, str], tuple[int, int]] = {}
    for total in per_minute:
        assert total.minute is not None and total.minute.second == 0
        assert before.replace(second=0, microsecond=0) <= total.minute <= after
        payments, amount = summed.get((total.asset_id, total.status), (0, 0))
        summed[total.asset_id, total.status] = (payments + total.payments,
                                                amount + total.amount)
    assert summed == expected
