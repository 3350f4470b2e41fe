"""The node's share of a channel disputed on chain: taken out once the window is over
(and the node's answer to a dispute of a stale state: its latest state on chain).

A disputed channel takes no more updates; after its consensus window the node defunds it,
settles the transfers of the disputed state (a payment it already paid forward is
resolved on chain with the recipient's preimage, anything else is refunded after its own
dispute window) and exits its balance to its own account, so no collateral stays stranded.
Transactions go through the node's transaction manager. Idempotent: a channel is retried
until nothing waits, also after a restart (the watchtower finds disputed channels again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from web3 import Web3
from web3.contract.contract import ContractFunction

from ..chain.exit import ChannelExit, Dispute
from ..chain.scanning import every
from ..chain.txmanager import TransactionManager
from ..engine import ChannelEngine
from ..protocol import errors
from ..protocol.transfers import HASHLOCK
from ..protocol.types import Address, Transfer
from ..store import ChannelStore, StoredChannel
from .routing import routing_id_of

log = logging.getLogger(__name__)


class NodeExits:
    def __init__(self, w3: Web3, store: ChannelStore, engine: ChannelEngine,
                 txs: TransactionManager, *, interval: float = 5.0,
                 hashlock: Address | None = None,
                 registered_preimage: Callable[[bytes], bytes | None] = lambda lock: None,
                 ) -> None:
        self.w3 = w3
        self.store = store
        self.engine = engine
        self.txs = txs
        self.address = engine.address
        self.interval = interval
        self._hashlock = hashlock
        self.registered_preimage = registered_preimage
        self.done: set[Address] = set()

    async def run(self) -> None:
        await every(self.interval, self.sweep, "exiting disputed channels")

    async def sweep(self) -> None:
        for channel_address in sorted(self.engine.disputed - self.done):
            await self._exit(channel_address)

    async def _exit(self, channel_address: Address) -> None:
        stored = await self.store.run(self.store.get_channel, channel_address)
        if stored is None:
            return
        openers = {t.transfer_id: await asyncio.to_thread(self._resolver, t)
                   for t in stored.transfers.values()}
        exit_ = self._on_chain(stored, "exit")
        try:
            progress = await asyncio.to_thread(exit_.exit, self.address, openers,
                                               self.engine.rules())
        except errors.DisputeWindowOpen:
            return
        except errors.ProtocolError as exc:
            log.warning("channel %s: cannot exit yet: %s", channel_address, exc.message)
            return
        if progress.paid_out:
            log.warning("channel %s: took %s out of the disputed channel", channel_address,
                        ", ".join(f"{amount} of {asset}"
                                  for asset, amount in progress.paid_out.items()))
        if progress.done:
            self.done.add(channel_address)

    async def dispute(self, stored: StoredChannel) -> Dispute:
        """Put our latest double-signed state on chain (the answer to a stale dispute)."""
        return await asyncio.to_thread(self._on_chain(stored, "dispute").dispute)

    def _on_chain(self, stored: StoredChannel, purpose: str) -> ChannelExit:
        """The channel's chain side for the node; call it from the node's loop: its
        transactions go through the transaction manager on that loop."""
        loop = asyncio.get_running_loop()
        channel_address = stored.state.channel_address

        def send(call: ContractFunction) -> Any:
            submitted = self.txs.submit(call, purpose=purpose, channel=channel_address)
            return asyncio.run_coroutine_threadsafe(submitted, loop).result()

        return ChannelExit(self.w3, stored, self.address, send)

    def _resolver(self, transfer: Transfer) -> bytes | None:
        """For a payment to the node that the node already paid forward: the recipient's
        resolver (same lock), so the node is paid on chain too; for a hashlock paying the
        node whose preimage was registered on chain: that preimage."""
        if transfer.responder != self.address:
            return None
        if transfer.transfer_definition == self._hashlock:
            lock, _expiry = HASHLOCK.decode_state(transfer.initial_state)
            preimage = self.registered_preimage(lock)
            if preimage is not None:
                return HASHLOCK.encode_resolver(preimage)
        routing_id = routing_id_of(transfer)
        routing = None if routing_id is None else self.store.get_routing(routing_id)
        if routing is None or routing.recipient_transfer_id is None:
            return None
        forward = self.store.get_transfer(routing.recipient_transfer_id,
                                          channel_address=routing.recipient_channel)
        if forward is None or forward.resolver is None or forward.balance.amount[1] == 0:
            return None
        return forward.resolver
