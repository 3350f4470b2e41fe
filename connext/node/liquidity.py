"""The node's liquidity per asset: what its own account holds on chain (what it can still
deposit as collateral) and what it holds on its side of channels.

Read every `liquidity_interval`; a balance on chain below the asset's low-liquidity level
(CONNEXT_LOW_LIQUIDITY, default the asset's collateral target: not enough to fill one more
channel) is reported: a warning in the log when it becomes low, the metric
`connext_liquidity_low`, and `low: true` in the admin API. Reads only, never moves funds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from web3 import Web3

from ..chain.contracts import contract
from ..chain.scanning import every
from ..protocol.types import ETH, Address
from ..store import ChannelStore
from .config import NodeConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssetLiquidity:
    asset_id: Address
    on_chain: int
    """The node's own account balance (wei or token base units)."""
    in_channels: int
    """The node's balance summed over its channels (its side of each)."""
    low_below: int
    """The on-chain balance below which this is reported as low."""
    channels: int
    """Channels in which the node holds some of this asset."""

    @property
    def low(self) -> bool:
        return self.on_chain < self.low_below

    def to_json(self) -> dict[str, object]:
        return {"assetId": self.asset_id, "onChain": str(self.on_chain),
                "inChannels": str(self.in_channels), "lowBelow": str(self.low_below),
                "low": self.low, "channels": self.channels}


class LiquidityWatch:
    def __init__(self, w3: Web3, store: ChannelStore, address: Address, config: NodeConfig,
                 assets: Iterable[Address],
                 on_reading: Callable[[AssetLiquidity], None] = lambda reading: None) -> None:
        self.w3 = w3
        self.store = store
        self.address = address
        self.config = config
        self.assets = list(dict.fromkeys([ETH, *assets]))
        self.on_reading = on_reading
        self.latest: dict[Address, AssetLiquidity] = {}

    async def run(self) -> None:
        await every(self.config.liquidity_interval, self.read, "reading the node's liquidity")

    async def read(self) -> dict[Address, AssetLiquidity]:
        """Read every asset's liquidity now (and report a balance that became low)."""
        in_channels: dict[Address, int] = {}
        holding: dict[Address, int] = {}
        for state in await self.store.run(self.store.list_channels, party=self.address):
            for asset_id, balance in zip(state.asset_ids, state.balances, strict=True):
                held = balance.alice if state.alice == self.address else balance.bob
                in_channels[asset_id] = in_channels.get(asset_id, 0) + held
                holding[asset_id] = holding.get(asset_id, 0) + (1 if held else 0)
        assets = list(dict.fromkeys([*self.assets, *in_channels]))
        readings = {}
        for asset_id in assets:
            on_chain = await asyncio.to_thread(self._balance_on_chain, asset_id)
            reading = AssetLiquidity(asset_id, on_chain, in_channels.get(asset_id, 0),
                                     self.config.low_liquidity_for(asset_id),
                                     holding.get(asset_id, 0))
            before = self.latest.get(asset_id)
            if reading.low and (before is None or not before.low):
                log.warning("low liquidity: the node holds %d of %s on chain, below %d; fund "
                            "%s to keep collateralizing channels", reading.on_chain, asset_id,
                            reading.low_below, self.address)
            elif before is not None and before.low and not reading.low:
                log.info("liquidity of %s is back above %d", asset_id, reading.low_below)
            readings[asset_id] = reading
            self.on_reading(reading)
        self.latest = readings
        return readings

    def _balance_on_chain(self, asset_id: Address) -> int:
        if asset_id == ETH:
            return int(self.w3.eth.get_balance(Web3.to_checksum_address(self.address)))
        token = contract(self.w3, "TestToken", asset_id)
        return int(token.functions.balanceOf(self.address).call())
