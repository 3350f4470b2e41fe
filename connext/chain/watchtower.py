"""Watchtower: answers a dispute of a stale state with the latest one.

A party that disputes an old state (one where it had more) would be paid by that state if
nobody answered within the consensus window. The watchtower scans the blocks since the last
one it processed (kept in the store, so a restart resumes) for logs of our channels'
contracts; for each channel with activity it reads the dispute record, and when the
disputed nonce is below the nonce of our latest double-signed state and the window is still
open, it calls `respond` with our stored channel (which disputes the latest state). Every
disputed channel is reported to `on_disputed` first (the node stops updating it), and every
transfer resolved on chain to `on_resolved` with its resolver (the node settles the other
hop of a payment with it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from web3 import Web3

from ..protocol.types import Address, ChannelState
from ..store import ChannelStore, StoredChannel
from .channel import ChannelContract, ChannelDispute
from .contracts import contract
from .scanning import block_ranges, every, unscanned

log = logging.getLogger(__name__)

ADDRESSES_PER_QUERY = 200
ZERO_ADDRESS = "0x" + "00" * 20

Respond = Callable[[StoredChannel, ChannelDispute], Awaitable[None]]
OnResolved = Callable[[Address, bytes, bytes], Awaitable[None]]
"""(channel address, transfer id, encoded resolver) of a transfer resolved on chain."""


class Watchtower:
    def __init__(
        self,
        w3: Web3,
        store: ChannelStore,
        party: Address,
        respond: Respond,
        *,
        name: str = "disputes",
        start_block: int = 0,
        poll_interval: float = 1.0,
        on_disputed: Callable[[Address], Awaitable[None]] | None = None,
        on_resolved: OnResolved | None = None,
    ) -> None:
        self.w3 = w3
        self.store = store
        self.party = party
        self.respond = respond
        self.name = name
        self.start_block = start_block
        self.poll_interval = poll_interval
        self.on_disputed = on_disputed
        self.on_resolved = on_resolved
        events = contract(w3, "ChannelMastercopy", ZERO_ADDRESS).events
        self._dispute_topic = events.ChannelDisputed.topic
        self._defunded = events.TransferDefunded()
        self._defunded_topic = bytes.fromhex(events.TransferDefunded.topic.removeprefix("0x"))

    async def recover(self) -> int:
        """At startup: find every dispute of our channels since `start_block` (logs of
        earlier scans are not read again) and check it; returns how many channels."""
        latest = int(await asyncio.to_thread(lambda: self.w3.eth.block_number))
        ours = {s.channel_address.lower(): s for s in
                await self.store.run(self.store.list_channels, party=self.party)}
        found: set[str] = set()
        for start, end in block_ranges(self.start_block, latest) if ours else ():
            found |= await asyncio.to_thread(self._disputed_in, start, end)
        disputed = [ours[a] for a in sorted(found) if a in ours]
        for state in disputed:
            await self._check(state)
        return len(disputed)

    def _disputed_in(self, first: int, last: int) -> set[str]:
        logs = self.w3.eth.get_logs({"fromBlock": first, "toBlock": last,
                                     "topics": [self._dispute_topic]})
        return {str(entry["address"]).lower() for entry in logs}

    async def run(self) -> None:
        await every(self.poll_interval, self.scan, "dispute scan")

    async def scan(self) -> int:
        """Process new blocks once; returns the last processed block."""
        first, latest = await unscanned(self.w3, self.store, self.name, self.start_block)
        if first > latest:
            return latest
        states = await self.store.run(self.store.list_channels, party=self.party)
        entries: list[Any] = []
        for start, end in block_ranges(first, latest) if states else ():
            entries += await asyncio.to_thread(
                self._logs, [s.channel_address for s in states], start, end)
        active = {str(entry["address"]).lower() for entry in entries}
        for state in states:
            if state.channel_address.lower() in active:
                await self._check(state)
        for entry in entries:
            await self._resolved(entry)
        await self.store.run(self.store.set_last_block, self.name, latest)
        return latest

    async def _resolved(self, entry: Any) -> None:
        topics = entry["topics"]
        if self.on_resolved is None or not topics or bytes(topics[0]) != self._defunded_topic:
            return
        args = self._defunded.process_log(entry)["args"]
        if args["resolved"] and args["encoded_resolver"]:
            await self.on_resolved(Web3.to_checksum_address(entry["address"]),
                                   bytes(args["transfer_id"]), bytes(args["encoded_resolver"]))

    async def _check(self, state: ChannelState) -> None:
        channel_address = state.channel_address
        chain = ChannelContract(self.w3, channel_address, state.alice, state.bob)
        record = await asyncio.to_thread(chain.channel_dispute)
        if record.nonce == 0:
            return
        if self.on_disputed is not None:
            # stop updating the channel first (and let an update in flight finish), then
            # compare: an update that landed before this is in `stored`, none can after
            await self.on_disputed(channel_address)
        stored = await self.store.run(self.store.get_channel, channel_address)
        if stored is None:
            return
        if record.nonce >= stored.state.nonce:
            return  # the latest state (or one we do not know) is on chain
        now = int(await asyncio.to_thread(lambda: self.w3.eth.get_block("latest")["timestamp"]))
        if now >= record.consensus_expiry:
            log.error("channel %s: stale state %d was disputed and its window is over; "
                      "we hold %d", channel_address, record.nonce, stored.state.nonce)
            return
        log.warning("channel %s: stale state %d disputed; answering with %d",
                    channel_address, record.nonce, stored.state.nonce)
        await self.respond(stored, record)

    def _logs(self, channels: list[Address], first: int, last: int) -> list[Any]:
        """Every log of `channels` in the blocks."""
        found: list[Any] = []
        for chunk in range(0, len(channels), ADDRESSES_PER_QUERY):
            addresses = [Web3.to_checksum_address(a)
                         for a in channels[chunk:chunk + ADDRESSES_PER_QUERY]]
            found += self.w3.eth.get_logs({"fromBlock": first, "toBlock": last,
                                           "address": addresses})
        return found
