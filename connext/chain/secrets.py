"""The secret registry seen from a party: preimages revealed on chain, and revealing ours.

A Hashlock pays on chain when its preimage was registered no later than its expiry (see
SecretRegistry.vy). `SecretWatcher` reads the registry's SecretRegistered logs from the
last block it processed (kept in the store, so a restart resumes) into the store and into
`registered` (lock hash -> block time of registration), which the party's protocol rules
read (`Rules.registered`): an off-chain resolve after the expiry is then accepted exactly
when the chain would pay it. `register_call` builds the transaction that reveals a
preimage; who sends it (a user's account, the node's transaction manager) is the caller's
business. Nothing here decides when to register.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from web3 import Web3
from web3.contract.contract import ContractFunction

from ..protocol.encoding import keccak
from ..protocol.transfers import lock_hash
from ..store import ChannelStore
from .contracts import contract
from .scanning import block_ranges, every, unscanned

log = logging.getLogger(__name__)

OnRegistered = Callable[[bytes, bytes, int], Awaitable[None]]
"""(lock hash, preimage, block time of registration)."""

_TOPIC = keccak(b"SecretRegistered(bytes32,bytes32)")


class SecretWatcher:
    def __init__(
        self,
        w3: Web3,
        store: ChannelStore,
        registry: str,
        *,
        start_block: int = 0,
        poll_interval: float = 1.0,
        name: str = "secrets",
        on_registered: OnRegistered | None = None,
    ) -> None:
        self.w3 = w3
        self.store = store
        self.registry = contract(w3, "SecretRegistry", registry)
        self.start_block = start_block
        self.poll_interval = poll_interval
        self.name = name
        self.on_registered = on_registered
        self.registered: dict[bytes, int] = {}
        """Lock hash -> block time of its preimage's first registration."""
        self.preimages: dict[bytes, bytes] = {}
        """Lock hash -> the registered preimage."""

    async def load(self) -> None:
        """What earlier scans found (call once at start, before `run`)."""
        for lock, preimage, at in await self.store.run(self.store.registered_secrets):
            self.registered[lock] = at
            self.preimages[lock] = preimage

    async def run(self) -> None:
        await every(self.poll_interval, self.scan, "secret registry scan")

    async def scan(self) -> int:
        """Process new blocks once; returns the last processed block."""
        first, latest = await unscanned(self.w3, self.store, self.name, self.start_block)
        for start, end in block_ranges(first, latest) if first <= latest else ():
            logs = await asyncio.to_thread(self.w3.eth.get_logs, {
                "fromBlock": start, "toBlock": end, "address": self.registry.address,
                "topics": ["0x" + _TOPIC.hex()]})
            for entry in logs:
                await self._found(bytes(entry["topics"][1]), bytes(entry["data"])[:32],
                                  int(entry["blockNumber"]))
        if first <= latest:
            await self.store.run(self.store.set_last_block, self.name, latest)
        return latest

    async def _found(self, lock: bytes, preimage: bytes, block_number: int) -> None:
        if lock in self.registered or lock_hash(preimage) != lock:
            return
        block = await asyncio.to_thread(self.w3.eth.get_block, block_number)
        at = int(block["timestamp"])
        await self.store.run(self.store.add_registered_secret, lock, preimage, at,
                             block_number)
        self.registered[lock] = at
        self.preimages[lock] = preimage
        log.info("preimage of lock 0x%s was registered on chain at %d", lock.hex(), at)
        if self.on_registered is not None:
            await self.on_registered(lock, preimage, at)

    def register_call(self, preimage: bytes) -> ContractFunction:
        """The (unsent) transaction that reveals `preimage` on chain."""
        return self.registry.functions.register(preimage)

    def registered_on_chain(self, lock: bytes) -> int:
        """Block time of the lock's registration as the chain has it now (0: none); a
        blocking read, for a decision that cannot wait for the next scan."""
        return int(self.registry.functions.registered_at(lock).call())
