"""Group commit (SQLite with synchronous=FULL): concurrent writes share one fsync, and each
is still atomic and durable on its own when it returns."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connext.counters import COUNTS
from connext.store import AlreadyExists, ChannelStore, StoreClosed

from .builders import funded

WRITERS = 16
WRITES = 40


@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[ChannelStore]:
    store = ChannelStore.open(f"sqlite:///{tmp_path / 'full.sqlite'}", synchronous="full")
    yield store
    store.close()


def test_concurrent_writers_share_commits_and_each_write_is_kept(
        full_store: ChannelStore) -> None:
    before = COUNTS.snapshot()
    barrier = threading.Barrier(WRITERS)

    def write(index: int) -> None:
        barrier.wait()
        for value in range(1, WRITES + 1):
            full_store.set_last_block(f"writer-{index}", value)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writes = COUNTS.db_writes - before["db_writes"]
    commits = COUNTS.db_commits - before["db_commits"]
    assert writes == WRITERS * WRITES
    assert commits < writes / 2, (commits, writes)  # writes met in shared commits
    for index in range(WRITERS):
        assert full_store.get_last_block(f"writer-{index}") == WRITES
    reopened = ChannelStore.open(full_store._engine.url, synchronous="full")
    try:
        assert reopened.get_last_block("writer-3") == WRITES
    finally:
        reopened.close()


def test_a_refused_write_in_a_shared_commit_changes_nothing_and_spares_the_others(
        full_store: ChannelStore) -> None:
    channel = funded(full_store)
    routing = {"sender_channel": channel.address, "sender_transfer_id": b"\x01" * 32,
               "asset_id": "0x" + "00" * 20, "amount": 5}
    full_store.create_routing(routing_id=b"\x07" * 32, **routing)  # type: ignore[arg-type]
    refused: list[BaseException] = []
    barrier = threading.Barrier(9)

    def duplicate() -> None:
        barrier.wait()
        for _ in range(WRITES):
            try:
                full_store.create_routing(routing_id=b"\x07" * 32,
                                          **routing)  # type: ignore[arg-type]
            except AlreadyExists as exc:
                refused.append(exc)

    def fresh(index: int) -> None:
        barrier.wait()
        for n in range(WRITES):
            full_store.create_routing(routing_id=bytes([index, n]) + b"\x00" * 30,
                                      **routing)  # type: ignore[arg-type]

    threads = [threading.Thread(target=duplicate)] + [
        threading.Thread(target=fresh, args=(i + 10,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == WRITES
    for index in range(10, 18):
        for n in range(WRITES):
            assert full_store.get_routing(bytes([index, n]) + b"\x00" * 30) is not None


def test_writes_from_the_event_loop_run_on_the_committer_and_share_commits(
        full_store: ChannelStore) -> None:
    """`run` hands the payment path's writes to the committer thread: many at once share a
    commit, a refused one (a duplicate) changes nothing and spares the others, and each has
    committed when its await returns."""
    channel = funded(full_store)
    routing = {"sender_channel": channel.address, "sender_transfer_id": b"\x01" * 32,
               "asset_id": "0x" + "00" * 20, "amount": 5}
    full_store.create_routing(routing_id=b"\x07" * 32, **routing)  # type: ignore[arg-type]
    before = COUNTS.snapshot()

    async def main() -> list[object]:
        calls = []
        for n in range(WRITES * 4):
            routing_id = b"\x07" * 32 if n % 4 == 0 else bytes([n % 256, n // 256]) + b"\x01" * 30
            calls.append(full_store.run(full_store.create_routing, routing_id=routing_id,
                                        **routing))
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(main())
    refused = [o for o in outcomes if isinstance(o, AlreadyExists)]
    assert len(refused) == WRITES
    assert all(not isinstance(o, BaseException) for i, o in enumerate(outcomes) if i % 4)
    commits = COUNTS.db_commits - before["db_commits"]
    assert commits < WRITES, commits  # 160 writes met in far fewer commits
    reopened = ChannelStore.open(full_store._engine.url, synchronous="full")
    try:
        for n in range(WRITES * 4):
            if n % 4:
                assert reopened.get_routing(bytes([n % 256, n // 256]) + b"\x01" * 30)
    finally:
        reopened.close()


def test_a_closed_store_refuses_writes_from_the_event_loop(tmp_path: Path) -> None:
    store = ChannelStore.open(f"sqlite:///{tmp_path / 'closed.sqlite'}", synchronous="full")
    store.close()

    async def write() -> None:
        await store.run(store.append_event, None, "test", {})

    with pytest.raises(StoreClosed):
        asyncio.run(write())


WRITER = """
import asyncio, sys
from connext.store import ChannelStore
store = ChannelStore.open(sys.argv[1], synchronous="full")
if sys.argv[2] == "loop":  # writes from the event loop, run on the committer thread
    async def main():
        value = len(store.events(limit=10**6))
        while True:
            await asyncio.gather(*(store.run(store.append_event, None, "n", {})
                                   for _ in range(3)))
            value += 3
            print(value, flush=True)  # returned: it must survive what comes next
    asyncio.run(main())
value = store.get_last_block("killed") or 0
while True:
    value += 1
    store.set_last_block("killed", value)
    print(value, flush=True)  # returned: it must survive what comes next
"""


@pytest.mark.parametrize(("kills", "mode"), [(4, "thread"), (3, "loop")])
def test_a_write_that_returned_survives_sigkill(tmp_path: Path, kills: int, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    ChannelStore.open(url).close()  # migrated before the writer starts
    for _ in range(kills):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, url, mode],
                                  stdout=subprocess.PIPE,
                                  text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert writer.stdout is not None
            returned = 0
            for count, line in enumerate(writer.stdout):
                returned = int(line)
                if count >= 100 + 50 * (mode == "loop"):
                    break
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.kill()
            writer.wait()
        store = ChannelStore.open(url)
        try:
            if mode == "loop":
                kept: int | None = len(store.events(limit=10**6))
            else:
                kept = store.get_last_block("killed")
            assert kept is not None and kept >= returned
        finally:
            store.close()
