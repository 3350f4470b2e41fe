"""The engine's per-channel lock: first come first served, an urgent waiter (the
counterparty's update building on ours) before the others, handed over without a gap."""

from __future__ import annotations

import asyncio

import pytest

from connext.engine.lock import ChannelLock


async def _holder(lock: ChannelLock, name: str, order: list[str], *, urgent: bool = False,
                  hold: float = 0.0) -> None:
    await lock.acquire(urgent=urgent)
    try:
        order.append(name)
        await asyncio.sleep(hold)
    finally:
        lock.release()


def test_waiters_in_order_and_an_urgent_one_first() -> None:
    async def main() -> list[str]:
        lock = ChannelLock()
        order: list[str] = []
        first = asyncio.create_task(_holder(lock, "ours", order, hold=0.05))
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(_holder(lock, "next-1", order)),
                 asyncio.create_task(_holder(lock, "next-2", order))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_holder(lock, "theirs", order, urgent=True)))
        await asyncio.gather(first, *tasks)
        assert not lock.locked()
        return order

    assert asyncio.run(main()) == ["ours", "theirs", "next-1", "next-2"]


def test_nothing_slips_in_between_release_and_the_next_holder() -> None:
    async def main() -> None:
        lock = ChannelLock()
        await lock.acquire()
        waiter = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)
        lock.release()
        assert lock.locked()  # handed to the waiter, not free for a newcomer
        newcomer = asyncio.create_task(lock.acquire())
        await waiter
        await asyncio.sleep(0)
        assert not newcomer.done()
        lock.release()
        await newcomer
        lock.release()
        assert not lock.locked()

    asyncio.run(main())


def test_a_waiter_cancelled_as_it_is_handed_the_lock_passes_it_on() -> None:
    async def main() -> None:
        lock = ChannelLock()
        await lock.acquire()
        cancelled = asyncio.create_task(lock.acquire())
        later = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)
        lock.release()  # handed to `cancelled`, which is cancelled before it runs
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(later, 1)
        lock.release()
        assert not lock.locked()
        waiting = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)
        assert waiting.done()
        lock.release()
        with pytest.raises(RuntimeError):
            lock.release()

    asyncio.run(main())
