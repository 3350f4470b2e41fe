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
    assert [r.amount for r in store.routings_since(before)] == [1, 2, 3]
    assert store.routings_since(datetime.now(UTC) + timedelta(seconds=5)) == []
    assert store.routing_counts() == {"pending": 2, "failed": 1}
    assert store.channel_count(NODE.address) == 0
    funded(store)
    funded(store)
    assert store.channel_count(NODE.address) == 2
