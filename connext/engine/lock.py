"""The per-channel lock of the engine: one update in flight per channel in this process.

Like `asyncio.Lock` (first come, first served), with one difference: a counterparty's
update that builds on the update we have in flight is served before anything queued, as
soon as ours is committed. Served in arrival order, it could wait behind our next update
in that channel, which the counterparty cannot answer while its own update waits for us:
both would sit until a timeout. The lock is handed straight to the next holder on release,
so nothing can slip in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class ChannelLock:
    __slots__ = ("_locked", "_urgent", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the lock; `urgent`: before every waiter that is not urgent."""
        if not self._locked and not self._urgent and not self._waiters:
            self._locked = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._waiters
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            else:
                queue.remove(future)
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter (urgent ones first), or free it."""
        if not self._locked:
            raise RuntimeError("release of an unlocked ChannelLock")
        for queue in (self._urgent, self._waiters):
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # stays locked: the waiter holds it now
                    return
        self._locked = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
