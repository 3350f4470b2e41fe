"""Deposit watcher: notices funds sent to channel addresses and has them reconciled.

It scans blocks from the last processed one (kept in the store, so a restart resumes where
it stopped) for ERC20 `Transfer` logs to known channel addresses and for the channels'
own deposit events; ETH sent by plain transfers leaves no log, so each scan also reads
every channel's ETH balance (one batched request for all of them) and reads a channel's
deposit totals only when its balance moved since the last scan, or a `Withdrawn` log says
ETH left it (a withdrawal and a deposit of the same amount leave the balance as it was).
A channel seen for the first time is read whole. For each channel and asset with
unprocessed deposits it calls `reconcile`. It only reads the chain.

Reading every channel's totals on every block instead costs several calls per channel and
block: a few hundred channels made that most of a busy node's CPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from web3 import Web3

from ..protocol.encoding import keccak
from ..protocol.types import ETH, Address, ChannelState
from ..store import ChannelStore
from .deposits import ChainDeposits
from .scanning import block_ranges, every, unscanned

log = logging.getLogger(__name__)

TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
WITHDRAWN_TOPIC = "0x" + keccak(b"Withdrawn(address,address,uint256,uint256)").hex()
BATCH = 200
"""Channels per `eth_getLogs` filter and per batch of balance reads."""

Reconcile = Callable[[ChannelState, Address], Awaitable[None]]


class DepositWatcher:
    def __init__(
        self,
        w3: Web3,
        store: ChannelStore,
        deposits: ChainDeposits,
        reconcile: Reconcile,
        *,
        name: str = "deposits",
        start_block: int = 0,
        poll_interval: float = 1.0,
        channels: Callable[[], list[ChannelState]] | None = None,
    ) -> None:
        self.w3 = w3
        self.store = store
        self.deposits = deposits
        self.reconcile = reconcile
        self.name = name
        self.start_block = start_block
        self.poll_interval = poll_interval
        self._channels = channels or store.list_channels
        self._eth_balances: dict[Address, int] = {}
        """Each channel's ETH balance at the last scan (in memory: a restart reads all)."""

    async def run(self) -> None:
        await every(self.poll_interval, self.scan, "deposit scan")

    async def scan(self) -> int:
        """Process new blocks once; returns the last processed block."""
        first, latest = await unscanned(self.w3, self.store, self.name, self.start_block)
        if first > latest:
            return latest  # no new block: nothing can have been deposited
        channels = {s.channel_address: s for s in await asyncio.to_thread(self._channels)}
        due: set[tuple[Address, Address]] = set()
        for start, end in block_ranges(first, latest) if channels else ():
            due |= await asyncio.to_thread(self._logged_deposits, list(channels), start, end)
        balances = await asyncio.to_thread(self._eth_balances_at, list(channels), latest)
        due |= {(address, ETH) for address, balance in balances.items()
                if self._eth_balances.get(address) != balance}
        for address, asset in sorted(due):
            state = channels[address]
            alice_total, bob_total = await self.deposits.total_deposits(state, asset)
            index = state.asset_index(asset)
            processed = (0, 0) if index is None else (
                state.processed_deposits_a[index], state.processed_deposits_b[index])
            if (alice_total, bob_total) != processed and max(alice_total, bob_total) > 0:
                try:
                    await self.reconcile(state, asset)
                except Exception as exc:
                    log.info("reconcile of %s in %s failed: %s", asset, address, exc)
                    balances.pop(address, None)  # read it again next scan
        self._eth_balances.update(balances)
        await self.store.run(self.store.set_last_block, self.name, latest)
        return latest

    def _logged_deposits(self, channels: list[Address], first: int,
                         last: int) -> set[tuple[Address, Address]]:
        """(channel, asset) pairs the logs of blocks [first, last] say to look at: ERC20
        transfers to a channel, and withdrawals of ETH from one."""
        found: set[tuple[Address, Address]] = set()
        by_lower = {a.lower(): a for a in channels}
        for chunk in range(0, len(channels), BATCH):
            some = channels[chunk:chunk + BATCH]
            recipients = ["0x" + "00" * 12 + a[2:].lower() for a in some]
            for entry in self.w3.eth.get_logs({
                "fromBlock": first, "toBlock": last,
                "topics": [TRANSFER_TOPIC, None, recipients],
            }):
                recipient = "0x" + bytes(entry["topics"][2])[-20:].hex()
                if recipient in by_lower:
                    found.add((by_lower[recipient], Web3.to_checksum_address(entry["address"])))
            for entry in self.w3.eth.get_logs({
                "fromBlock": first, "toBlock": last,
                "address": [Web3.to_checksum_address(a) for a in some],
                "topics": [WITHDRAWN_TOPIC],
            }):
                channel = by_lower.get(str(entry["address"]).lower())
                if channel is not None:
                    found.add((channel, ETH))  # any asset: the balance check wants ETH
        return found

    def _eth_balances_at(self, channels: list[Address], block: int) -> dict[Address, int]:
        balances: dict[Address, int] = {}
        for chunk in range(0, len(channels), BATCH):
            some = channels[chunk:chunk + BATCH]
            with self.w3.batch_requests() as batch:
                for address in some:
                    batch.add(self.w3.eth.get_balance(Web3.to_checksum_address(address),
                                                      block_identifier=block))
                results: list[Any] = batch.execute()
            balances.update({a: int(b) for a, b in zip(some, results, strict=True)})
        return balances
