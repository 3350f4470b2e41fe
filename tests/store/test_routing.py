"""Routing records: the node links the sender's hop to the recipient's and moves the
payment through pending -> forwarded -> resolved (or cancelled / failed)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from connext.protocol.types import ETH
from connext.store import AlreadyExists, ChannelStore, NotFound, RoutingStatus, StaleWrite

from .builders import TOKEN, Channel

SENDER = Channel()
RECIPIENT = Channel()
SENDER_CHANNEL = "0x" + "11" * 20
RECIPIENT_CHANNEL = "0x" + "22" * 20


def _create(store: ChannelStore, **overrides: object) -> bytes:
    routing_id = os.urandom(32)
    fields: dict[str, object] = {
        "routing_id": routing_id,
        "sender_channel": SENDER_CHANNEL,
        "sender_transfer_id": os.urandom(32),
        "asset_id": ETH,
        "amount": 10**18,
        "recipient": RECIPIENT.bob.address,
    }
    fields.update(overrides)
    store.create_routing(**fields)  # type: ignore[arg-type]
    return routing_id


def test_routing_lifecycle_pending_forwarded_resolved(store: ChannelStore) -> None:
    routing_id = os.urandom(32)
    sender_transfer = os.urandom(32)
    created = store.create_routing(
        routing_id=routing_id, sender_channel=SENDER_CHANNEL,
        sender_transfer_id=sender_transfer, asset_id=ETH, amount=2**200,
        recipient=RECIPIENT.bob.address, recipient_asset_id=TOKEN,
    )
    assert created.status is RoutingStatus.PENDING
    assert created.recipient_channel is None and created.recipient_transfer_id is None
    assert store.get_routing(routing_id) == created

    forward_id = os.urandom(32)
    forwarded = store.update_routing_status(
        routing_id, "forwarded", recipient_channel=RECIPIENT_CHANNEL,
        recipient_transfer_id=forward_id, recipient_amount=2**199,
        expected=RoutingStatus.PENDING,
    )
    assert forwarded.status is RoutingStatus.FORWARDED
    assert forwarded.recipient_channel == RECIPIENT_CHANNEL
    assert forwarded.recipient_transfer_id == forward_id
    assert forwarded.recipient_amount == 2**199
    assert forwarded.amount == 2**200
    assert forwarded.updated_at >= created.updated_at

    resolved = store.update_routing_status(routing_id, RoutingStatus.RESOLVED,
                                           expected=("forwarded",))
    assert resolved.status is RoutingStatus.RESOLVED
    # fields not given are kept
    assert resolved.recipient_transfer_id == forward_id
    assert resolved.sender_transfer_id == sender_transfer
    assert resolved.recipient_asset_id == TOKEN
    assert store.get_routing(routing_id) == resolved


def test_a_routing_id_is_recorded_once(store: ChannelStore) -> None:
    routing_id = _create(store)
    with pytest.raises(AlreadyExists):
        _create(store, routing_id=routing_id, amount=1)
    stored = store.get_routing(routing_id)
    assert stored is not None and stored.amount == 10**18


def test_expected_status_makes_a_step_happen_once(store: ChannelStore) -> None:
    routing_id = _create(store)
    store.update_routing_status(routing_id, "forwarded", expected="pending")
    with pytest.raises(StaleWrite):
        store.update_routing_status(routing_id, "forwarded", expected="pending")
    with pytest.raises(NotFound):
        store.update_routing_status(os.urandom(32), "failed")
    with pytest.raises(ValueError):
        store.update_routing_status(routing_id, "lost")


def test_failure_keeps_the_error(store: ChannelStore) -> None:
    routing_id = _create(store)
    failed = store.update_routing_status(routing_id, "failed",
                                         error="the recipient's channel lacks collateral")
    assert failed.error == "the recipient's channel lacks collateral"
    assert store.get_routing(os.urandom(32)) is None


def test_queries_by_status_and_pending_forwards_per_recipient(store: ChannelStore) -> None:
    first = _create(store)
    second = _create(store)
    other = _create(store, recipient=SENDER.bob.address)
    no_recipient = _create(store, recipient=None)
    store.update_routing_status(second, "forwarded")
    store.update_routing_status(no_recipient, "cancelled")

    pending = [r.routing_id for r in store.routings_with_status("pending")]
    assert pending == [first, other]
    both = [r.routing_id for r in store.routings_with_status(("pending", "forwarded"))]
    assert sorted(both) == sorted([first, second, other])
    assert [r.routing_id for r in store.routings_with_status(RoutingStatus.CANCELLED)] == [
        no_recipient]
    assert [r.routing_id for r in store.pending_forwards(RECIPIENT.bob.address)] == [first]
    assert [r.routing_id for r in store.pending_forwards(SENDER.bob.address)] == [other]


def test_a_link_is_recorded_without_recipient_and_claimed_once(store: ChannelStore) -> None:
    routing_id = _create(store, recipient=None, status=RoutingStatus.LINK)
    link = store.get_routing(routing_id)
    assert link is not None and link.status is RoutingStatus.LINK and link.recipient is None
    assert [r.routing_id for r in store.routings_with_status("link")] == [routing_id]

    assert store.claim_routing(routing_id, "link", "pending", recipient=RECIPIENT.bob.address)
    # a second claim (by anyone) finds it no longer open
    assert not store.claim_routing(routing_id, "link", "pending", recipient=SENDER.bob.address)
    assert not store.claim_routing(routing_id, "link", "refunding", recipient=None)
    claimed = store.get_routing(routing_id)
    assert claimed is not None
    assert claimed.status is RoutingStatus.PENDING
    assert claimed.recipient == RECIPIENT.bob.address
    assert claimed.updated_at >= link.updated_at

    # giving a claim back clears the recipient; unknown routings are never claimed
    assert store.claim_routing(routing_id, "pending", "link", recipient=None)
    back = store.get_routing(routing_id)
    assert back is not None and back.status is RoutingStatus.LINK and back.recipient is None
    assert not store.claim_routing(os.urandom(32), "link", "pending", recipient=None)
    with pytest.raises(ValueError):
        store.claim_routing(routing_id, "link", "lost", recipient=None)


def _claim_race(stores: tuple[ChannelStore, ...], routing_id: bytes,
                claimants: list[str]) -> list[bool]:
    """Every claimant claims the link at once (one thread each); True where it won."""
    barrier = threading.Barrier(len(claimants))

    def claim(index: int) -> bool:
        barrier.wait()
        return stores[index % len(stores)].claim_routing(routing_id, "link", "pending",
                                                         recipient=claimants[index])

    with ThreadPoolExecutor(max_workers=len(claimants)) as pool:
        return list(pool.map(claim, range(len(claimants))))


def test_concurrent_claims_of_a_link_exactly_one_wins(store: ChannelStore,
                                                      database_url: str) -> None:
    other = ChannelStore.open(database_url)  # a second "process" on the same database
    try:
        claimants = ["0x" + f"{i + 1:02x}" * 20 for i in range(8)]
        for _round in range(5):
            routing_id = _create(store, recipient=None, status="link")
            won = _claim_race((store, other), routing_id, claimants)
            assert won.count(True) == 1, won
            stored = other.get_routing(routing_id)
            assert stored is not None and stored.status is RoutingStatus.PENDING
            assert stored.recipient == claimants[won.index(True)]
    finally:
        other.close()
