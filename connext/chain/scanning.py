"""What the chain watchers share: a loop that survives failures, the chain's latest block
(read once for all the watchers of a process: see `latest_block`), and the blocks not yet
scanned (the last processed block is kept in the store under the watcher's name, so a
restart resumes where it stopped) in ranges a node's `eth_getLogs` accepts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

from web3 import Web3

from ..store import ChannelStore

log = logging.getLogger(__name__)

MAX_BLOCK_RANGE = 2_000
LATEST_BLOCK_TTL = 0.5
"""Seconds one answer to `eth_blockNumber` serves every watcher polling the same endpoint.
A node runs four watchers and a client two, each polling every second; a process with many
clients (the benchmarks, a wallet server) would ask the chain dozens of times a second for
the same number. A watcher sees a new block at most this much later."""
_latest: dict[str, tuple[float, int]] = {}
_reading: dict[str, threading.Lock] = {}


async def every(interval: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `step` every `interval` seconds until cancelled; a failure is logged and the
    next round tries again."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
        await asyncio.sleep(interval)


async def unscanned(w3: Web3, store: ChannelStore, name: str,
                    start_block: int) -> tuple[int, int]:
    """(first, latest): the blocks watcher `name` has not processed; none if first > latest."""
    latest = await latest_block(w3)
    last = await store.run(store.get_last_block, name)
    return (start_block if last is None else last + 1), latest


async def latest_block(w3: Web3) -> int:
    """The chain's latest block number, read at most every LATEST_BLOCK_TTL seconds per
    endpoint for all the watchers of this process (those that ask while it is being read
    wait for that answer instead of asking too)."""
    endpoint = str(getattr(w3.provider, "endpoint_uri", None) or id(w3.provider))
    cached = _latest.get(endpoint)
    if cached is not None and time.monotonic() - cached[0] < LATEST_BLOCK_TTL:
        return cached[1]
    lock = _reading.setdefault(endpoint, threading.Lock())

    def read() -> int:
        with lock:
            cached = _latest.get(endpoint)
            if cached is not None and time.monotonic() - cached[0] < LATEST_BLOCK_TTL:
                return cached[1]
            number = int(w3.eth.block_number)
            _latest[endpoint] = (time.monotonic(), number)
            return number

    return await asyncio.to_thread(read)


def block_ranges(first: int, last: int) -> Iterator[tuple[int, int]]:
    """[first, last] in inclusive ranges of at most MAX_BLOCK_RANGE blocks."""
    for start in range(first, last + 1, MAX_BLOCK_RANGE):
        yield start, min(last, start + MAX_BLOCK_RANGE - 1)
