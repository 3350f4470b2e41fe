"""Real protocol objects for the store's tests: two signers run updates through
`connext.protocol.channel` (propose + countersign), exactly as the engine would."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connext.protocol.channel import (
    Rules,
    countersign,
    create_update,
    deposit_update,
    propose,
    resolve_update,
    setup_update,
)
from connext.protocol.encoding import checksum
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import (
    ETH,
    Address,
    ChannelState,
    NetworkContext,
    Transfer,
    Update,
    UpdateType,
)
from connext.store import ChannelStore

HASHLOCK_ADDR = checksum(b"\xa1" * 20)
TOKEN = checksum(b"\x70" * 20)
RULES = Rules(definitions={HASHLOCK_ADDR: HASHLOCK}, now=1_700_000_000)
NETWORK = NetworkContext(
    chain_id=31337,
    channel_factory=checksum(b"\xf1" * 20),
    channel_mastercopy=checksum(b"\xf2" * 20),
    transfer_registry=checksum(b"\xf3" * 20),
)
NODE = Signer(b"\x01" * 32)


@dataclass(frozen=True)
class Step:
    """One double-signed update and everything `commit_update` takes with it."""

    state: ChannelState
    update: Update
    created: Transfer | None
    resolved: Transfer | None
    expected_nonce: int

    def commit(self, store: ChannelStore,
               events: tuple[tuple[str, Mapping[str, Any]], ...] = ()) -> None:
        store.commit_update(self.state, self.update, created=self.created,
                            resolved=self.resolved, expected_nonce=self.expected_nonce,
                            events=events)


class Channel:
    """A channel between the node (alice) and a user (bob), driven by both signers."""

    def __init__(self, user: Signer | None = None, node: Signer = NODE) -> None:
        self.alice = node
        self.bob = user or Signer.random()
        self.state: ChannelState | None = None
        self.transfers: dict[bytes, Transfer] = {}
        self.signers = {self.alice.address: self.alice, self.bob.address: self.bob}

    @property
    def address(self) -> Address:
        assert self.state is not None
        return self.state.channel_address

    def signer(self, who: str) -> Signer:
        return self.alice if who == "alice" else self.bob

    def peek(self, update: Update) -> Step:
        """Run `update` through both parties without moving the channel on."""
        initiator = self.signers[update.initiator]
        responder = self.signers[update.responder]
        signed, _ = propose(self.state, self.transfers, update, initiator, RULES)
        final, applied = countersign(self.state, self.transfers, signed, responder, RULES)
        assert final.double_signed
        return Step(
            state=applied.state,
            update=final,
            created=applied.transfer if update.type is UpdateType.CREATE else None,
            resolved=applied.transfer if update.type is UpdateType.RESOLVE else None,
            expected_nonce=0 if self.state is None else self.state.nonce,
        )

    def advance(self, step: Step) -> Step:
        self.state = step.state
        if step.created is not None:
            self.transfers[step.created.transfer_id] = step.created
        if step.resolved is not None:
            del self.transfers[step.resolved.transfer_id]
        return step

    def setup(self) -> Step:
        return self.advance(self.peek(setup_update(self.alice.address, self.bob.address,
                                                   NETWORK, 3600)))

    def deposit_update(self, alice_total: int, bob_total: int, asset: Address = ETH) -> Update:
        assert self.state is not None
        return deposit_update(self.state, self.alice.address, asset, alice_total, bob_total)

    def deposit(self, alice_total: int, bob_total: int, asset: Address = ETH) -> Step:
        return self.advance(self.peek(self.deposit_update(alice_total, bob_total, asset)))

    def hashlock_update(self, by: str, amount: int, preimage: bytes,
                        meta: Mapping[str, Any] | None = None,
                        transfer_id: bytes | None = None, asset: Address = ETH) -> Update:
        assert self.state is not None
        return create_update(
            self.state, self.signer(by).address,
            transfer_id=transfer_id or os.urandom(32),
            transfer_definition=HASHLOCK_ADDR, asset_id=asset, amount=amount,
            initial_state=HASHLOCK.encode_state(lock_hash(preimage), 0),
            transfer_timeout=600, meta=meta,
        )

    def create_hashlock(self, by: str, amount: int, preimage: bytes,
                        meta: Mapping[str, Any] | None = None,
                        transfer_id: bytes | None = None) -> Step:
        return self.advance(self.peek(self.hashlock_update(by, amount, preimage, meta,
                                                           transfer_id)))

    def resolve(self, transfer_id: bytes, preimage: bytes,
                meta: Mapping[str, Any] | None = None) -> Step:
        assert self.state is not None
        transfer = self.transfers[transfer_id]
        resolver = HASHLOCK.encode_resolver(preimage)
        return self.advance(self.peek(resolve_update(self.state, transfer.responder,
                                                     transfer_id, resolver, meta)))

    def cancel(self, transfer_id: bytes) -> Step:
        return self.resolve(transfer_id, bytes(32))


def funded(store: ChannelStore, user: Signer | None = None,
           alice: int = 1000, bob: int = 1000) -> Channel:
    """A channel set up and funded in ETH, every step committed to `store`."""
    channel = Channel(user)
    channel.setup().commit(store)
    channel.deposit(alice, bob).commit(store)
    return channel
