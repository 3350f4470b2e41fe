"""Collateral: the node's own funds on its side of users' channels.

Before the node forwards a payment into a channel it makes sure its balance there covers
the payment: it deposits on chain (deploying the channel in the same transaction when it
does not exist yet) and reconciles with a deposit update. One top-up per channel and asset
at a time; the chain deposit is done before the off-chain update claims it.

Just in time and bounded: a deposit brings the node's balance to what the payment needs
plus a buffer of up to ten more such payments (at most the profile's `target`), never
beyond the profile's `cap`. So a dust payment locks dust, and no stream of payments can make
the node lock more than the cap in one channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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


class Collateral:
    def __init__(
        self,
        engine: ChannelEngine,
        profile_for: Callable[[Address], CollateralProfile],
        deposit_on_chain: DepositOnChain,
        read_totals: ReadTotals,
    ) -> None:
        self.engine = engine
        self.profile_for = profile_for
        self.deposit_on_chain = deposit_on_chain
        self.read_totals = read_totals
        self._locks: dict[tuple[Address, Address], asyncio.Lock] = {}

    async def ensure(self, channel: ChannelState, asset_id: Address, needed: int) -> ChannelState:
        """The channel's state once the node's balance in `asset_id` covers `needed`.

        Deposits already on chain but not reconciled yet (the user was offline) count: the
        node reconciles them instead of depositing again.
        """
        key = (channel.channel_address, asset_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            stored = await self.engine.channel(channel.channel_address)
            assert stored is not None
            state = stored.state
            have = state.balance_of(asset_id).alice
            if have >= needed:
                return state
            alice_total, _bob_total = await self.read_totals(state, asset_id)
            index = state.asset_index(asset_id)
            processed = 0 if index is None else state.processed_deposits_a[index]
            unreconciled = alice_total - processed
            if have + unreconciled < needed:
                profile = self.profile_for(asset_id)
                if needed > profile.cap:
                    raise errors.InsufficientCollateral(
                        f"the node keeps at most {profile.cap} of {asset_id} in a channel")
                goal = min(profile.cap, needed + min(BUFFER_MULTIPLE * needed, profile.target))
                amount = goal - have - unreconciled
                log.info("collateralizing %s with %d of %s", state.channel_address, amount,
                         asset_id)
                await self._deposit(state, asset_id, amount)
            return await self.reconcile(state.channel_address, asset_id)

    async def _deposit(self, state: ChannelState, asset_id: Address, amount: int) -> None:
        """Deposit on chain; a failed attempt is retried before the payment is refused."""
        for attempt in range(1, DEPOSIT_ATTEMPTS + 1):
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
