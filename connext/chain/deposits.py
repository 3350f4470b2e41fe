"""On-chain deposit totals of a channel, read for the update protocol.

A deposit update claims each party's total deposits; the responder checks the claim
against these numbers before countersigning. Reads only; web3 calls run in a thread so
the event loop never blocks on the RPC.
"""

from __future__ import annotations

import asyncio

from web3 import Web3

from ..protocol.types import Address, ChannelState
from .channel import ChannelContract


class ChainDeposits:
    """`DepositSource` over a JSON-RPC endpoint."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def totals(self, channel_address: Address, alice: Address, bob: Address,
               asset_id: Address) -> tuple[int, int]:
        return ChannelContract(self.w3, channel_address, alice, bob).deposit_totals(asset_id)

    async def total_deposits(self, state: ChannelState, asset_id: Address) -> tuple[int, int]:
        return await asyncio.to_thread(
            self.totals, state.channel_address, state.alice, state.bob, asset_id
        )
