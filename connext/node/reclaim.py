"""When the node takes its collateral back: above the reclaim threshold (after a payment,
and on the timer), and everything from channels that stayed idle.

Collateral the node deposited into a channel earns nothing while the channel is idle, and
a user who made the node collateralize and then went quiet would otherwise keep it locked
for good. So every `reclaim_interval` the node looks at channels without an update for
`idle_reclaim_after` and reclaims its whole balance there (when it is at least the asset's
minimum withdrawal, so the gas is worth it); the next payment into the channel
collateralizes again, just in time. The reclaim itself is a Withdraw transfer the user's
client countersigns (connext/node/withdrawals.py); a user who is offline is asked again
next round.

On the same timer, a channel that is not idle but holds more of the node's collateral than
its profile's reclaim threshold (connext/node/profiles.py) gives back the excess down to
the profile's target: collateral that payments brought in from senders does not pile up.
A channel with forwards or a deposit under way is left for the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..chain.scanning import every
from ..engine import ChannelEngine
from ..protocol.types import Address, ChannelState
from ..store import ChannelStore
from .config import CollateralProfile, NodeConfig
from .withdrawals import Reclaims

log = logging.getLogger(__name__)


class IdleReclaim:
    def __init__(self, store: ChannelStore, engine: ChannelEngine, reclaims: Reclaims,
                 config: NodeConfig,
                 on_failure: Callable[[str], None] = lambda task: None,
                 profile_for: Callable[[Address, Address], CollateralProfile] | None = None,
                 busy: Callable[[Address, Address], bool] = lambda channel, asset: False,
                 ) -> None:
        self.store = store
        self.engine = engine
        self.reclaims = reclaims
        self.config = config
        self.on_failure = on_failure
        self.profile_for = profile_for or (lambda channel, asset: config.collateral_for(asset))
        self.busy = busy

    async def run(self) -> None:
        await every(self.config.reclaim_interval, self.sweep, "reclaiming idle collateral")

    async def sweep(self) -> int:
        """One round over idle channels; returns how many reclaims were started."""
        idle_since = datetime.now(UTC) - timedelta(seconds=self.config.idle_reclaim_after)
        started = 0
        idle = await self.store.run(self.store.list_channels, party=self.engine.address,
                                    idle_since=idle_since)
        for state in idle:
            if state.channel_address in self.engine.disputed:
                continue
            for asset_id, balance in zip(state.asset_ids, state.balances, strict=True):
                if self.busy(state.channel_address, asset_id):
                    continue
                if balance.alice >= max(1, self.config.limits_for(asset_id).min_withdrawal):
                    started += await self._reclaim(state, asset_id, balance.alice)
        idle_addresses = {state.channel_address for state in idle}
        for state in await self.store.run(self.store.list_channels, party=self.engine.address):
            if state.channel_address in idle_addresses | self.engine.disputed:
                continue
            for asset_id, balance in zip(state.asset_ids, state.balances, strict=True):
                excess = self._excess(state, asset_id, balance.alice)
                if excess and not self.busy(state.channel_address, asset_id):
                    started += await self._reclaim(state, asset_id, excess)
        return started

    def _excess(self, state: ChannelState, asset_id: Address, held: int) -> int:
        """What the node holds above the channel's reclaim threshold, down to its target
        (0 when the threshold is off, not exceeded, or the excess is below the asset's
        minimum withdrawal: the gas would not be worth it)."""
        profile = self.profile_for(state.channel_address, asset_id)
        if not profile.reclaim_threshold or held <= profile.reclaim_threshold:
            return 0
        excess = held - profile.target
        return excess if excess >= self.config.limits_for(asset_id).min_withdrawal else 0

    async def above_threshold(self, state: ChannelState, asset_id: Address) -> None:
        """After a payment settled: take back what the node holds above the reclaim
        threshold in the channel, down to the collateral target."""
        profile = self.profile_for(state.channel_address, asset_id)
        held = state.balance_of(asset_id).alice
        if profile.reclaim_threshold and held > profile.reclaim_threshold:
            await self.reclaims.reclaim(state, asset_id, held - profile.target)

    async def _reclaim(self, state: ChannelState, asset_id: Address, amount: int) -> int:
        try:
            await self.reclaims.reclaim(state, asset_id, amount)
        except Exception as exc:  # the user is offline, or busy: next round
            log.info("cannot reclaim %d of %s from idle channel %s yet: %s", amount, asset_id,
                     state.channel_address, exc)
            self.on_failure("reclaim")
            return 0
        log.info("reclaimed %d of %s from idle channel %s", amount, asset_id,
                 state.channel_address)
        return 1
