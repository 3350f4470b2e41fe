"""Several writers on one channel (threads, over two stores on one database, as two node
processes would be): the compare-and-swap lets exactly one win each nonce. Also on SQLite
with synchronous=FULL, where the writes of a store are group committed."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connext.store import ChannelStore, StaleWrite
from connext.store.testing import PostgresCluster

from .builders import Channel, Step, funded

WRITERS = 6
ROUNDS = 4


@pytest.fixture(params=["sqlite", "sqlite-full", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        return cluster.create_schema()
    monkeypatch.setenv("CONNEXT_SQLITE_SYNC", "full" if request.param == "sqlite-full"
                       else "normal")
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


def _race(stores: list[ChannelStore], steps: list[Step]) -> list[bool]:
    """Commit every step at once (one per thread); True where the commit won."""
    barrier = threading.Barrier(len(steps))

    def attempt(index: int) -> bool:
        store = stores[index % len(stores)]
        barrier.wait()
        try:
            steps[index].commit(store, events=(("transfer.created", {"writer": index}),))
        except StaleWrite:
            return False
        return True

    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        return list(pool.map(attempt, range(len(steps))))


def test_concurrent_writers_exactly_one_wins_per_nonce(
    store: ChannelStore, database_url: str
) -> None:
    other = ChannelStore.open(database_url)  # a second "process" on the same database
    try:
        channel = funded(store, alice=10**6, bob=10**6)
        winners: list[Step] = []
        for _ in range(ROUNDS):
            candidates = [
                channel.peek(channel.hashlock_update("bob", 1 + i, os.urandom(32)))
                for i in range(WRITERS)
            ]
            won = _race([store, other], candidates)
            assert won.count(True) == 1, won
            winner = candidates[won.index(True)]
            winners.append(channel.advance(winner))

            for reader in (store, other):
                stored = reader.get_channel(channel.address)
                assert stored is not None
                assert stored.state == winner.state
                assert stored.latest_update == winner.update
                assert stored.transfers == channel.transfers

        history = other.update_history(channel.address)
        assert [u.nonce for u in history] == list(range(1, 3 + ROUNDS))
        assert history[2:] == [w.update for w in winners]
        assert len(store.events(channel.address)) == ROUNDS  # losers' events rolled back
        assert len(store.transfers(channel.address)) == ROUNDS
    finally:
        other.close()


def test_concurrent_setups_of_one_channel_store_it_once(database_url: str) -> None:
    stores = [ChannelStore.open(database_url) for _ in range(2)]
    try:
        channel = Channel()
        step = channel.setup()
        won = _race(stores, [step] * WRITERS)
        assert won.count(True) == 1
        assert [u.nonce for u in stores[0].update_history(channel.address)] == [1]
    finally:
        for store in stores:
            store.close()


def test_many_channels_written_in_parallel(store: ChannelStore) -> None:
    """Writers on different channels do not get in each other's way."""
    channels = [funded(store) for _ in range(4)]
    plans = {c.address: [c.deposit(1000 + n, 1000) for n in range(1, 6)] for c in channels}

    def run(address: str) -> None:
        for step in plans[address]:
            step.commit(store)

    with ThreadPoolExecutor(max_workers=len(channels)) as pool:
        list(pool.map(run, plans))
    for channel in channels:
        stored = store.get_channel(channel.address)
        assert stored is not None and stored.state == channel.state
        assert stored.state.nonce == 7
