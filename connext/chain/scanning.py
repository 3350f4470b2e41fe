"""What the chain watchers share: a loop that survives failures, and the blocks not yet
scanned (the last processed block is kept in the store under the watcher's name, so a
restart resumes where it stopped) in ranges a node's `eth_getLogs` accepts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

from web3 import Web3

from ..store import ChannelStore

log = logging.getLogger(__name__)

MAX_BLOCK_RANGE = 2_000


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
    latest = int(await asyncio.to_thread(lambda: w3.eth.block_number))
    last = await store.run(store.get_last_block, name)
    return (start_block if last is None else last + 1), latest


def block_ranges(first: int, last: int) -> Iterator[tuple[int, int]]:
    """[first, last] in inclusive ranges of at most MAX_BLOCK_RANGE blocks."""
    for start in range(first, last + 1, MAX_BLOCK_RANGE):
        yield start, min(last, start + MAX_BLOCK_RANGE - 1)
