"""Collateral: the node's own funds on its side of users' channels.

Before the node forwards a payment into a channel it makes sure its balance there covers
the payment: it deposits on chain (deploying the channel in the same transaction when it
does not exist yet) and reconciles with a deposit update. One deposit per channel and
asset at a time; the chain deposit is done before the off-chain update claims it.

Just in time and bounded, by the channel's profile (connext/node/profiles.py): a deposit
brings the node's balance to what the payment needs plus a buffer of up to ten more such
payments (at most `target`), never beyond `cap`. So a dust payment locks dust, and no
stream of payments can make the node lock more than the cap in one channel. A payment the
balance covers but that leaves less than `threshold` behind tops the channel up in the
background, off the payment's path, to ten such payments (at least twice the threshold, at
most the target): the next top-up is a threshold's worth of payments away, and a payment
below a tenth of the threshold never starts one.

Concurrent forwards into one channel reserve what they need while their transfer is being
created, so twenty payments at once see each other's amounts and share one deposit instead
of each finding the same balance (and failing) or each depositing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.channel import deposit_update
from ..protocol.types import Address, ChannelState
from .config import CollateralProfile

log = logging.getLogger(__name__)

DEPOSIT_ATTEMPTS = 3
BUFFER_MULTIPLE = 10
"""A top-up brings the node's balance to the payment plus up to ten more like it (at most
the profile's target): payments of one size do not each need a deposit, and dust locks
dust."""
DepositOnChain = Callable[[ChannelState, Address, int], Awaitable[None]]
ReadTotals = Callable[[ChannelState, Address], Awaitable[tuple[int, int]]]


ProfileFor = Callable[[Address, Address], CollateralProfile]
"""(channel address, asset id) -> the collateral profile that applies there."""
RESERVATION_SECONDS = 120.0
"""A reservation its forward never released (a bug, a cancelled task) stops counting after
this long, so it cannot make the node over-collateralize for good."""


@dataclass
class _Reservation:
    amount: int
    since: float


class Collateral:
    def __init__(
        self,
        engine: ChannelEngine,
        profile_for: ProfileFor,
        deposit_on_chain: DepositOnChain,
        read_totals: ReadTotals,
    ) -> None:
        self.engine = engine
        self.profile_for = profile_for
        self.deposit_on_chain = deposit_on_chain
        self.read_totals = read_totals
        self._locks: dict[tuple[Address, Address], asyncio.Lock] = {}
        self._reserved: dict[tuple[Address, Address], list[_Reservation]] = {}
        self._topping_up: set[tuple[Address, Address]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.depositing = 0
        """Collateral deposits on chain right now (never above 1 per channel and asset)."""

    def busy(self, channel_address: Address, asset_id: Address) -> bool:
        """Whether forwards or a deposit are under way in this channel and asset (a reclaim
        waits for a quiet moment)."""
        key = (channel_address, asset_id)
        lock = self._locks.get(key)
        return bool(self._live_reservations(key)) or (lock is not None and lock.locked())

    async def ensure(self, channel: ChannelState, asset_id: Address, needed: int) -> ChannelState:
        """The channel's state once the node's balance in `asset_id` covers `needed`, with
        `needed` reserved for the caller's forward until `release` (or a timeout):
        concurrent forwards into the channel count each other's reservations.

        Deposits already on chain but not reconciled yet (the user was offline) count: the
        node reconciles them instead of depositing again.
        """
        return await self._ensure(channel.channel_address, asset_id, needed)

    def release(self, channel_address: Address, asset_id: Address, amount: int) -> None:
        """A forward of `amount` was created (or given up): its reservation ends."""
        key = (channel_address, asset_id)
        held = self._reserved.get(key, [])
        for index, reservation in enumerate(held):
            if reservation.amount == amount:
                del held[index]
                break
        if not held:
            self._reserved.pop(key, None)

    def _live_reservations(self, key: tuple[Address, Address]) -> int:
        held = self._reserved.get(key)
        if not held:
            return 0
        now = time.monotonic()
        held[:] = [r for r in held if now - r.since <= RESERVATION_SECONDS]
        return sum(r.amount for r in held)

    async def _ensure(self, channel_address: Address, asset_id: Address,
                      needed: int) -> ChannelState:
        key = (channel_address, asset_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        profile = self.profile_for(channel_address, asset_id)
        async with lock:
            stored = await self.engine.channel(channel_address)
            assert stored is not None
            state = stored.state
            have = state.balance_of(asset_id).alice - self._live_reservations(key)
            if have < needed:
                alice_total, _bob_total = await self.read_totals(state, asset_id)
                index = state.asset_index(asset_id)
                processed = 0 if index is None else state.processed_deposits_a[index]
                unreconciled = alice_total - processed
                if have + unreconciled < needed:
                    # what is held for other forwards counts against the cap too
                    held = state.balance_of(asset_id).alice - have
                    if needed + held > profile.cap:
                        raise errors.InsufficientCollateral(
                            f"the node keeps at most {profile.cap} of {asset_id} in a channel")
                    amount = (self._goal(profile, needed, held)
                              - state.balance_of(asset_id).alice - unreconciled)
                    log.info("collateralizing %s with %d of %s", channel_address, amount,
                             asset_id)
                    await self._deposit(state, asset_id, amount)
                state = await self.reconcile(channel_address, asset_id)
            elif self._wants_top_up(profile, needed, have - needed) and (
                    key not in self._topping_up):
                self._top_up_later(channel_address, asset_id, needed)
            self._reserved.setdefault(key, []).append(_Reservation(needed, time.monotonic()))
            return state

    @staticmethod
    def _goal(profile: CollateralProfile, needed: int, held: int) -> int:
        """The node's balance a just-in-time deposit aims for: the payment and what other
        forwards hold, plus ten more such payments (at most the target), never beyond the
        cap."""
        return min(profile.cap, held + needed + min(BUFFER_MULTIPLE * needed, profile.target))

    @staticmethod
    def _wants_top_up(profile: CollateralProfile, needed: int, left: int) -> bool:
        """Whether a payment that leaves `left` behind calls for a top-up: below the
        threshold, and the payment at least a tenth of it (dust never makes the node lock
        more than dust: a buffer of ten payments is what the just-in-time rule gives)."""
        return left < profile.threshold and BUFFER_MULTIPLE * needed >= profile.threshold

    @staticmethod
    def _top_up_buffer(profile: CollateralProfile, needed: int) -> int:
        """What a top-up leaves free beyond the reservations: ten such payments, at least
        twice the threshold (so the next top-up is at least a threshold's worth of payments
        away: no deposit per payment), at most the target."""
        return min(profile.target, max(2 * profile.threshold, BUFFER_MULTIPLE * needed))

    def _top_up_later(self, channel_address: Address, asset_id: Address, needed: int) -> None:
        """The balance covers this payment but leaves less than the threshold: deposit for
        the next ones in the background (under the same lock: one deposit at a time)."""
        key = (channel_address, asset_id)
        self._topping_up.add(key)

        async def top_up() -> None:
            try:
                await asyncio.sleep(0)  # after the forward took its reservation
                profile = self.profile_for(channel_address, asset_id)
                async with self._locks[key]:
                    stored = await self.engine.channel(channel_address)
                    if stored is None:
                        return
                    state = stored.state
                    have = state.balance_of(asset_id).alice - self._live_reservations(key)
                    if have >= profile.threshold:
                        return
                    held = state.balance_of(asset_id).alice - have
                    # `held` includes the payment that asked for this: the buffer on top
                    goal = min(profile.cap, held + self._top_up_buffer(profile, needed))
                    amount = goal - state.balance_of(asset_id).alice
                    if amount <= 0:
                        return
                    log.info("topping up %s with %d of %s (below its threshold)",
                             channel_address, amount, asset_id)
                    await self._deposit(state, asset_id, amount)
                    await self.reconcile(channel_address, asset_id)
            except Exception as exc:  # the next payment tries again, just in time
                log.warning("top-up of %s in %s failed: %s", asset_id, channel_address, exc)
            finally:
                self._topping_up.discard(key)

        task = asyncio.create_task(top_up())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deposit(self, state: ChannelState, asset_id: Address, amount: int) -> None:
        """Deposit on chain; a failed attempt is retried before the payment is refused."""
        for attempt in range(1, DEPOSIT_ATTEMPTS + 1):
            self.depositing += 1
            try:
                await self.deposit_on_chain(state, asset_id, amount)
                return
            except Exception as exc:
                log.warning("collateral deposit of %d %s failed (attempt %d of %d): %s",
                            amount, asset_id, attempt, DEPOSIT_ATTEMPTS, exc)
                if attempt == DEPOSIT_ATTEMPTS:
                    raise errors.InsufficientCollateral(
                        f"the node cannot provide {amount} of {asset_id} right now") from exc
                await asyncio.sleep(0.5 * attempt)
            finally:
                self.depositing -= 1

    async def reconcile(self, channel_address: Address, asset_id: Address) -> ChannelState:
        """Propose a deposit update for whatever the chain shows beyond what is processed."""
        stored = await self.engine.channel(channel_address)
        assert stored is not None
        alice_total, bob_total = await self.read_totals(stored.state, asset_id)
        try:
            committed = await self.engine.propose(
                channel_address,
                lambda state, _t: deposit_update(state, self.engine.address, asset_id,
                                                 alice_total, bob_total),
            )
        except errors.InvalidDeposit:
            # reconciled meanwhile by the other side (or nothing new): use what is stored
            stored = await self.engine.channel(channel_address)
            assert stored is not None
            return stored.state
        return committed.applied.state
