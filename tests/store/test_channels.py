"""Channel states, their history, pending proposals and transfers, as the engine uses them."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from connext.protocol.channel import transfers_root
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH
from connext.store import ChannelStore, NotFound, StaleWrite

from .builders import NETWORK, Channel, funded


def test_setup_round_trips_state_and_double_signed_update(store: ChannelStore) -> None:
    channel = Channel()
    step = channel.setup()
    assert store.get_channel(step.state.channel_address) is None

    step.commit(store)

    stored = store.get_channel(channel.address)
    assert stored is not None
    assert stored.state == step.state
    assert stored.latest_update == step.update
    assert stored.latest_update.alice_signature == step.update.alice_signature
    assert stored.latest_update.bob_signature == step.update.bob_signature
    assert stored.pending_update is None
    assert stored.transfers == {}


def test_uint256_balances_survive_exactly(store: ChannelStore) -> None:
    big = 2**128 - 1  # the protocol's cap; far beyond a float or a BIGINT
    channel = funded(store, alice=big, bob=big - 1)
    stored = store.get_channel(channel.address)
    assert stored is not None
    assert stored.state.balance_of(ETH).alice == big
    assert stored.state.balance_of(ETH).bob == big - 1
    assert stored.state == channel.state


def test_create_then_resolve_moves_transfer_from_active_to_resolved(store: ChannelStore) -> None:
    channel = funded(store)
    preimage = os.urandom(32)
    routing_id = "0x" + os.urandom(32).hex()
    meta = {"routingId": routing_id, "recipient": channel.bob.address, "note": "lunch"}
    created = channel.create_hashlock("bob", 100, preimage, meta)
    created.commit(store)
    assert created.created is not None
    tid = created.created.transfer_id

    stored = store.get_channel(channel.address)
    assert stored is not None
    assert stored.state == created.state
    assert list(stored.transfers) == [tid]
    active = stored.transfers[tid]
    assert active == created.created
    assert active.meta == meta  # meta is not part of Transfer equality
    assert transfers_root(stored.transfers) == stored.state.merkle_root
    record = store.transfer_record(tid)
    assert record is not None and record.active and record.created_nonce == created.state.nonce
    assert record.routing_id == bytes.fromhex(routing_id[2:])

    resolved = channel.resolve(tid, preimage, meta={"paidBy": "preimage"})
    resolved.commit(store)

    stored = store.get_channel(channel.address)
    assert stored is not None
    assert stored.state == resolved.state
    assert stored.transfers == {}
    assert stored.state.balance_of(ETH).alice == 1100
    transfer = store.get_transfer(tid)
    assert resolved.resolved is not None
    assert transfer is not None
    assert transfer.balance == resolved.resolved.balance == replace(
        created.created.balance, amount=(0, 100))
    assert transfer.resolver == HASHLOCK.encode_resolver(preimage)
    assert transfer == resolved.resolved
    # the create meta (with the routing id) updated by the resolve meta, as the protocol does
    assert transfer.meta == {**meta, "paidBy": "preimage"}
    record = store.transfer_record(tid)
    assert record is not None and not record.active
    assert record.resolved_nonce == resolved.state.nonce
    assert record.resolve_meta == {"paidBy": "preimage"}
    assert record.resolved_at is not None
    assert [r.transfer.transfer_id for r in store.transfers(channel.address, active=False)] == [
        tid]
    assert store.transfers(channel.address, active=True) == []


def test_active_transfers_are_exactly_those_in_the_state(store: ChannelStore) -> None:
    channel = funded(store)
    preimages = [os.urandom(32) for _ in range(4)]
    ids = []
    for index, preimage in enumerate(preimages):
        step = channel.create_hashlock("bob" if index % 2 else "alice", 10 + index, preimage)
        step.commit(store)
        assert step.created is not None
        ids.append(step.created.transfer_id)
    channel.resolve(ids[1], preimages[1]).commit(store)
    channel.cancel(ids[2]).commit(store)

    stored = store.get_channel(channel.address)
    assert stored is not None
    assert list(stored.transfers) == [ids[0], ids[3]]
    assert stored.transfers == channel.transfers
    assert transfers_root(stored.transfers) == stored.state.merkle_root
    cancelled = store.get_transfer(ids[2])
    assert cancelled is not None and cancelled.balance.amount == (12, 0)
    assert [r.active for r in store.transfers(channel.address)] == [True, False, False, True]


def test_stale_expected_nonce_is_rejected_and_leaves_the_row_unchanged(
    store: ChannelStore,
) -> None:
    channel = funded(store)
    # both parties propose nonce 3 on top of nonce 2; the node's update lands first
    theirs = channel.peek(channel.hashlock_update("alice", 5, os.urandom(32)))
    ours = channel.peek(channel.hashlock_update("bob", 7, os.urandom(32)))
    assert ours.expected_nonce == theirs.expected_nonce == 2
    theirs.commit(store)
    winner = store.get_channel(channel.address)

    with pytest.raises(StaleWrite):
        ours.commit(store, events=(("transfer.created", {"n": 1}),))
    with pytest.raises(StaleWrite):  # a replay of the winner loses too
        theirs.commit(store)

    assert store.get_channel(channel.address) == winner
    assert winner is not None and winner.state == theirs.state
    assert theirs.created is not None
    assert winner.transfers == {theirs.created.transfer_id: theirs.created}
    assert store.events(channel.address) == []
    assert len(store.transfers(channel.address)) == 1
    assert [u.nonce for u in store.update_history(channel.address)] == [1, 2, 3]
    assert store.update_history(channel.address)[-1] == theirs.update


def test_second_setup_of_a_channel_is_a_stale_write(store: ChannelStore) -> None:
    channel = Channel()
    step = channel.setup()
    step.commit(store)
    with pytest.raises(StaleWrite):
        step.commit(store)
    assert [u.nonce for u in store.update_history(channel.address)] == [1]


def test_a_failed_commit_writes_nothing_at_all(store: ChannelStore) -> None:
    channel = funded(store)
    ghost = Channel(channel.bob)  # the same channel, on a branch this store never saw
    ghost.state = channel.state
    channel.create_hashlock("bob", 5, b"\x01" * 32).commit(store)
    created = ghost.create_hashlock("bob", 6, b"\x02" * 32)
    assert created.created is not None
    resolve = ghost.resolve(created.created.transfer_id, b"\x02" * 32)
    # the CAS passes (nonce 3 -> 4) but the transfer to resolve is unknown: all rolls back
    with pytest.raises(NotFound):
        resolve.commit(store, events=(("transfer.resolved", {}),))
    stored = store.get_channel(channel.address)
    assert stored is not None and stored.state == channel.state
    assert stored.transfers == channel.transfers
    assert [u.nonce for u in store.update_history(channel.address)] == [1, 2, 3]
    assert store.events() == []


def test_commit_refuses_what_would_corrupt_the_store(store: ChannelStore) -> None:
    channel = funded(store)
    step = channel.peek(channel.deposit_update(2000, 1000))
    single = replace(step.update, bob_signature=None)
    with pytest.raises(ValueError, match="double-signed"):
        store.commit_update(step.state, single, expected_nonce=step.expected_nonce)
    with pytest.raises(ValueError, match="expected_nonce"):
        store.commit_update(step.state, step.update, expected_nonce=step.expected_nonce + 1)
    create = channel.peek(channel.hashlock_update("bob", 1, b"\x02" * 32))
    with pytest.raises(ValueError, match="created transfer"):
        store.commit_update(create.state, create.update, expected_nonce=create.expected_nonce)
    stored = store.get_channel(channel.address)
    assert stored is not None and stored.state == channel.state


def test_history_is_ordered_by_nonce_and_pages_by_since_nonce(store: ChannelStore) -> None:
    channel = funded(store)
    steps = [channel.deposit(1000 + 10 * i, 1000) for i in range(1, 6)]
    for step in steps:
        step.commit(store)
    history = store.update_history(channel.address)
    assert [u.nonce for u in history] == list(range(1, 8))
    assert history[2:] == [s.update for s in steps]
    assert all(u.double_signed for u in history)
    assert [u.nonce for u in store.update_history(channel.address, since_nonce=5)] == [6, 7]
    assert [u.nonce for u in store.update_history(channel.address, since_nonce=2, limit=2)] == [
        3, 4]
    assert store.update_history("0x" + "00" * 20) == []


def test_pending_proposal_is_kept_until_the_update_commits(store: ChannelStore) -> None:
    channel = Channel()
    step = channel.setup()
    # write-ahead for a setup: there is no channel row yet
    single = replace(step.update, bob_signature=None)
    store.save_pending(step.state.channel_address, single)
    assert store.get_pending(step.state.channel_address) == single
    step.commit(store)
    assert store.get_pending(channel.address) is None

    deposit = channel.peek(channel.deposit_update(10, 0))
    proposal = replace(deposit.update, bob_signature=None)
    store.save_pending(channel.address, proposal)
    stored = store.get_channel(channel.address)
    assert stored is not None and stored.pending_update == proposal
    assert stored.state == step.state  # a proposal does not move the channel

    with pytest.raises(StaleWrite):  # a proposal must be for the next nonce
        store.save_pending(channel.address, replace(proposal, nonce=5))
    store.clear_pending(channel.address)
    assert store.get_pending(channel.address) is None

    store.save_pending(channel.address, proposal)
    channel.advance(deposit).commit(store)
    stored = store.get_channel(channel.address)
    assert stored is not None and stored.pending_update is None


def test_find_and_list_channels(store: ChannelStore) -> None:
    first = funded(store)
    second = funded(store)
    found = store.find_channel(first.alice.address, first.bob.address, NETWORK.chain_id)
    assert found is not None and found.state == first.state
    assert store.find_channel(first.alice.address, first.bob.address, 1) is None
    assert store.find_channel(first.bob.address, first.alice.address, NETWORK.chain_id) is None
    assert store.list_channels() == [first.state, second.state]
    assert store.list_channels(party=second.bob.address) == [second.state]
    assert store.list_channels(party=first.alice.address) == [first.state, second.state]


def test_events_committed_with_an_update(store: ChannelStore) -> None:
    channel = funded(store)
    step = channel.create_hashlock("alice", 7, os.urandom(32))
    step.commit(store, events=(("transfer.received", {"amount": "7"}),))
    assert [(e.kind, e.payload) for e in store.events(channel.address)] == [
        ("transfer.received", {"amount": "7"})]


def test_transfers_by_routing_id_finds_both_hops(store: ChannelStore) -> None:
    routing_id = os.urandom(32)
    sender = funded(store)
    recipient = funded(store)
    meta = {"routingId": "0x" + routing_id.hex()}
    incoming = sender.create_hashlock("bob", 10, b"\x05" * 32, meta)
    incoming.commit(store)
    outgoing = recipient.create_hashlock("alice", 10, b"\x05" * 32, meta)
    outgoing.commit(store)
    sender.create_hashlock("bob", 10, b"\x06" * 32, {"routingId": "not-an-id"}).commit(store)

    found = store.transfers_by_routing_id(routing_id)
    assert found == [incoming.created, outgoing.created]
    assert store.transfers_by_routing_id(os.urandom(32)) == []
    assert outgoing.created is not None
    assert store.get_transfer(outgoing.created.transfer_id,
                              channel_address=sender.address) is None


def test_a_transfer_id_may_recur_after_resolution(store: ChannelStore) -> None:
    # the protocol only forbids reusing the id of an *active* transfer
    channel = funded(store)
    tid = os.urandom(32)
    channel.create_hashlock("bob", 3, b"\x07" * 32, transfer_id=tid).commit(store)
    channel.cancel(tid).commit(store)
    again = channel.create_hashlock("bob", 4, b"\x08" * 32, transfer_id=tid)
    again.commit(store)
    stored = store.get_channel(channel.address)
    assert stored is not None and stored.transfers == {tid: again.created}
    latest = store.get_transfer(tid)
    assert latest is not None and latest.balance.amount == (4, 0)
    assert len(store.transfers(channel.address)) == 2


def test_restore_replaces_a_stale_copy_and_never_goes_back(store: ChannelStore) -> None:
    channel = funded(store)
    kept = channel.create_hashlock("bob", 10, b"\x09" * 32)
    kept.commit(store)
    settled = channel.create_hashlock("bob", 20, b"\x0a" * 32)
    settled.commit(store)
    assert kept.created is not None and settled.created is not None
    # the counterparty moved on without us: settled is resolved, a new one created
    channel.resolve(settled.created.transfer_id, b"\x0a" * 32)
    newer = channel.create_hashlock("alice", 30, b"\x0b" * 32)
    assert channel.state is not None and newer.created is not None

    store.save_pending(channel.address, replace(channel.peek(
        channel.deposit_update(5000, 1000)).update, bob_signature=None, nonce=5))
    store.restore_channel(channel.state, newer.update, channel.transfers.values())

    stored = store.get_channel(channel.address)
    assert stored is not None
    assert stored.state == channel.state
    assert stored.latest_update == newer.update
    assert stored.transfers == channel.transfers
    assert stored.pending_update is None
    gone = store.transfer_record(settled.created.transfer_id)
    assert gone is not None and gone.resolved_nonce == channel.state.nonce
    assert [u.nonce for u in store.update_history(channel.address)] == [1, 2, 3, 4, 6]

    with pytest.raises(StaleWrite):  # an older state never replaces a newer one
        store.restore_channel(kept.state, kept.update, [kept.created])
    again = store.get_channel(channel.address)
    assert again is not None and again.state == channel.state


def test_restore_into_an_empty_store(store: ChannelStore) -> None:
    source = Channel()
    source.setup()
    source.deposit(100, 100)
    step = source.create_hashlock("bob", 10, b"\x0c" * 32)
    assert source.state is not None
    store.restore_channel(source.state, step.update, source.transfers.values())
    stored = store.get_channel(source.address)
    assert stored is not None
    assert stored.state == source.state and stored.transfers == source.transfers
    # and the channel goes on from there
    source.deposit(200, 100).commit(store)
    assert [u.nonce for u in store.update_history(source.address)] == [3, 4]


def test_public_keys(store: ChannelStore) -> None:
    channel = Channel()
    assert store.get_public_key(channel.bob.address) is None
    store.set_public_key(channel.bob.address, channel.bob.public_key)
    store.set_public_key(channel.bob.address, channel.bob.public_key)
    assert store.get_public_key(channel.bob.address) == channel.bob.public_key
