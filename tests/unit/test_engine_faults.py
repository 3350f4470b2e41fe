"""Two real channel engines (node and client, each with its own SQLite store) exchange
updates over an in-memory wire that loses requests and replies, while both sides propose at
once and either side restarts from its store. Whatever happens:

- the node never signs two different updates at one nonce (its counterparty could otherwise
  pick the state it likes best in a dispute);
- the client does so only by yielding to the node: it had proposed its own update at that
  nonce, the node never took it (it refused it as busy, or never got it) and proposed its
  own there, which the client took. So there is at most one double-signed state per nonce;
- a transfer is created once: a create retried after its reply was lost never locks the
  funds again (even when the transfer was resolved meanwhile);
- once the wire behaves, both sides agree on one state, and no funds were made or lost.

Seeded schedules of operations and faults (thread timing still varies between runs).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from connext.engine import ChannelEngine
from connext.engine.engine import UPDATE_METHOD, ChannelBusy
from connext.messaging import MessagingTimeout, RemoteError
from connext.protocol import errors
from connext.protocol.channel import (
    Rules,
    create_update,
    deposit_update,
    locked,
    propose,
    resolve_update,
    setup_update,
)
from connext.protocol.encoding import checksum
from connext.protocol.serialization import update_from_json, update_to_json
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import (
    ETH,
    Address,
    ChannelState,
    CreateDetails,
    NetworkContext,
    Update,
)
from connext.store import ChannelStore

HASHLOCK_ADDR = checksum(b"\xa1" * 20)
NETWORK = NetworkContext(
    chain_id=31337,
    channel_factory=checksum(b"\xf1" * 20),
    channel_mastercopy=checksum(b"\xf2" * 20),
    transfer_registry=checksum(b"\xf3" * 20),
)
NODE = Signer(b"\x01" * 32)  # alice
USER = Signer(b"\x02" * 32)  # bob
DEPOSIT = 1_000_000


def rules() -> Rules:
    return Rules(definitions={HASHLOCK_ADDR: HASHLOCK}, now=int(time.time()))


class Chain:
    """On-chain deposit totals, as the engines' deposit check reads them."""

    def __init__(self) -> None:
        self.totals = (DEPOSIT, DEPOSIT)

    async def total_deposits(self, state: ChannelState, asset_id: Address) -> tuple[int, int]:
        return self.totals


@dataclass
class Wire:
    """Delivers requests between engines by address; loses some (as `faults` says) and
    records every update each party signed."""

    faults: Callable[[], str] = lambda: "deliver"
    engines: dict[Address, ChannelEngine] = field(default_factory=dict)
    signed: dict[tuple[str, int], set[Update]] = field(default_factory=lambda: defaultdict(set))
    meanwhile: Callable[[], Awaitable[Any]] | None = None
    remote_errors: bool = False
    """Hand a handler's protocol error back as the signed error reply messaging sends."""

    def endpoint(self, address: Address) -> Endpoint:
        return Endpoint(self, address)

    def record(self, body: dict[str, Any]) -> None:
        for key in ("update", "previous"):
            if body.get(key) is None:
                continue
            update = update_from_json(body[key])
            unsigned = replace(update, alice_signature=None, bob_signature=None)
            if update.alice_signature is not None:
                self.signed["node", update.nonce].add(unsigned)
            if update.bob_signature is not None:
                self.signed["user", update.nonce].add(unsigned)


@dataclass
class Endpoint:
    wire: Wire
    address: Address

    async def request(self, to: Address, method: str, body: dict[str, Any], *,
                      timeout: float = 10.0, check_result: Any = None) -> dict[str, Any]:
        # the engine checks the countersignature itself when the transport does not
        wire = self.wire
        body = copy.deepcopy(body)
        wire.record(body)
        fault = wire.faults() if method == UPDATE_METHOD else "deliver"
        if fault == "lose request":
            raise MessagingTimeout("request lost")
        handler = wire.engines[to].handlers()[method]
        await asyncio.sleep(0)  # let the other side interleave
        try:
            reply = await handler(self.address, body)
        except errors.ProtocolError as exc:
            if not wire.remote_errors or isinstance(exc, MessagingTimeout):
                raise
            raise RemoteError(exc.code, exc.message) from None  # what messaging replies
        wire.record(reply)
        if fault == "lose reply":
            raise MessagingTimeout("reply lost")
        if fault == "lose reply, then the node moves on":
            # the node got the update and goes on at once (e.g. resolves the transfer
            # just created); its request waits for our lock, the reply never comes
            assert wire.meanwhile is not None
            asyncio.get_running_loop().create_task(wire.meanwhile())
            await asyncio.sleep(0.01)
            raise MessagingTimeout("reply lost")
        return copy.deepcopy(reply)


class Parties:
    def __init__(self, tmp_path: Path, wire: Wire) -> None:
        self.tmp_path = tmp_path
        self.wire = wire
        self.chain = Chain()
        self.stores = {
            NODE.address: ChannelStore.open(f"sqlite:///{tmp_path / 'node.sqlite'}"),
            USER.address: ChannelStore.open(f"sqlite:///{tmp_path / 'user.sqlite'}"),
        }
        for signer in (NODE, USER):
            self.restart(signer)
        self.channel = setup_update(NODE.address, USER.address, NETWORK, 3600).channel_address
        self.preimages: dict[bytes, bytes] = {}
        self.count = 0

    def restart(self, signer: Signer) -> None:
        """A fresh engine on the same store: what a crashed process comes back with."""
        self.wire.engines[signer.address] = ChannelEngine(
            signer, self.stores[signer.address], self.wire.endpoint(signer.address), rules,
            self.chain, request_timeout=1.0, yields_on_collision=signer is USER,
        )

    def engine(self, signer: Signer) -> ChannelEngine:
        return self.wire.engines[signer.address]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

    async def state(self, signer: Signer) -> ChannelState:
        stored = await self.engine(signer).channel(self.channel)
        assert stored is not None
        return stored.state

    async def open(self) -> None:
        await self.engine(NODE).propose_setup(
            setup_update(NODE.address, USER.address, NETWORK, 3600))
        await self.engine(USER).propose(self.channel, lambda state, _t: (
            deposit_update(state, USER.address, ETH, DEPOSIT, DEPOSIT)))

    async def pay(self, payer: Signer, amount: int) -> None:
        self.count += 1
        preimage = hashlib.sha256(b"preimage-%d" % self.count).digest()
        transfer_id = hashlib.sha256(b"transfer-%d" % self.count).digest()
        self.preimages[transfer_id] = preimage
        await self.engine(payer).propose(self.channel, lambda state, _t: create_update(
            state, payer.address, transfer_id=transfer_id, transfer_definition=HASHLOCK_ADDR,
            asset_id=ETH, amount=amount,
            initial_state=HASHLOCK.encode_state(lock_hash(preimage), 0), transfer_timeout=600,
        ))

    async def resolve(self, signer: Signer, pick: random.Random) -> None:
        stored = await self.engine(signer).channel(self.channel)
        assert stored is not None
        mine = [t for t in stored.transfers.values() if t.responder == signer.address]
        if not mine:
            return
        transfer = pick.choice(sorted(mine, key=lambda t: t.transfer_id))
        preimage = self.preimages[transfer.transfer_id]
        await self.engine(signer).propose(self.channel, lambda state, transfers: resolve_update(
            state, signer.address, transfer.transfer_id, preimage))


EXPECTED = (MessagingTimeout, ChannelBusy, errors.StaleNonce, errors.UnknownTransfer,
            errors.InsufficientBalance, errors.DuplicateTransfer)


async def step(parties: Parties, pick: random.Random) -> None:
    """One or two operations at once, from random sides."""
    async def one() -> None:
        signer = pick.choice((NODE, USER))
        action = pick.random()
        try:
            if action < 0.5:
                await parties.pay(signer, pick.randint(1, 1000))
            elif action < 0.9:
                await parties.resolve(signer, pick)
            else:
                await parties.engine(signer).sync(parties.channel)
        except EXPECTED:
            pass

    await asyncio.gather(*(one() for _ in range(pick.choice((1, 2, 2)))))
    if pick.random() < 0.1:
        parties.restart(pick.choice((NODE, USER)))


@pytest.mark.parametrize("seed", range(6))
def test_no_party_signs_two_states_at_one_nonce_whatever_the_wire_loses(
    tmp_path: Path, seed: int
) -> None:
    pick = random.Random(seed)
    lossy = False

    def faults() -> str:
        if not lossy:
            return "deliver"
        roll = pick.random()
        return "lose request" if roll < 0.15 else "lose reply" if roll < 0.3 else "deliver"

    wire = Wire(faults)
    parties = Parties(tmp_path, wire)

    async def scenario() -> None:
        nonlocal lossy
        await parties.open()
        lossy = True
        for _ in range(40):
            await step(parties, pick)
        lossy = False
        # the wire heals: each side pays once more (finishing what it left pending first),
        # then both compare
        for signer in (NODE, USER):
            await parties.pay(signer, 1)
        for signer in (NODE, USER):
            await parties.engine(signer).sync(parties.channel)

    try:
        asyncio.run(scenario())
        node_state = asyncio.run(parties.state(NODE))
        user_state = asyncio.run(parties.state(USER))
    finally:
        parties.close()

    yielded = 0
    for (party, nonce), updates in sorted(wire.signed.items()):
        if party == "node" or len(updates) == 1:
            assert len(updates) == 1, f"the {party} signed {len(updates)} updates at {nonce}"
            continue
        assert len(updates) == 2, f"the user signed {len(updates)} updates at {nonce}"
        nodes = {u for u in updates if u.initiator == NODE.address}
        assert len(nodes) == 1, f"the user signed two of its own updates at {nonce}"
        assert wire.signed["node", nonce] == nodes, (
            f"the node signed the update the user gave up at {nonce}")
        yielded += 1
    assert yielded > 0, "no collision happened: the schedule tested nothing of yielding"

    assert node_state == user_state
    for party in ("node", "user"):
        with sqlite3.connect(tmp_path / f"{party}.sqlite") as db:
            twice = db.execute(
                "SELECT transfer_id, COUNT(*) FROM transfers"
                " GROUP BY channel_address, transfer_id HAVING COUNT(*) > 1").fetchall()
        assert twice == [], f"the {party} holds transfers created twice: {twice}"
    balance = node_state.balance_of(ETH)
    stored = asyncio.run(_transfers(tmp_path))
    assert balance.alice + balance.bob + locked(stored, ETH) == 2 * DEPOSIT
    assert node_state.nonce > 4  # setup, deposit, the two last payments and more


async def _transfers(tmp_path: Path) -> dict[bytes, Any]:
    store = ChannelStore.open(f"sqlite:///{tmp_path / 'node.sqlite'}")
    try:
        channel = setup_update(NODE.address, USER.address, NETWORK, 3600).channel_address
        stored = await asyncio.to_thread(store.get_channel, channel)
        assert stored is not None
        return dict(stored.transfers)
    finally:
        store.close()


def test_a_create_whose_reply_was_lost_is_not_made_twice_after_it_was_resolved(
    tmp_path: Path,
) -> None:
    """The user's payment lands at the node, the reply is lost, and the node resolves the
    payment before the user retries: the retry must see the transfer done, not create it
    again (that would lock the amount a second time, for good)."""
    faults = iter(["lose reply, then the node moves on"])
    wire = Wire(lambda: next(faults, "deliver"))
    parties = Parties(tmp_path, wire)

    async def node_resolves_it() -> None:
        transfer_id = hashlib.sha256(b"transfer-%d" % parties.count).digest()
        preimage = parties.preimages[transfer_id]
        await parties.engine(NODE).propose(parties.channel, lambda state, _t: resolve_update(
            state, NODE.address, transfer_id, preimage))

    wire.meanwhile = node_resolves_it

    async def scenario() -> tuple[int, int]:
        wire.faults = lambda: "deliver"
        await parties.open()
        wire.faults = lambda: next(faults, "deliver")
        before = (await parties.state(USER)).balance_of(ETH).bob
        with pytest.raises(errors.DuplicateTransfer):  # the engine says: it exists already
            await parties.pay(USER, 700)
        user = await parties.engine(USER).channel(parties.channel)
        assert user is not None and user.transfers == {}
        return before, user.state.balance_of(ETH).bob

    try:
        before, after = asyncio.run(scenario())
        node_state = asyncio.run(parties.state(NODE))
    finally:
        parties.close()
    assert before - after == 700  # paid once
    assert node_state.balance_of(ETH).bob == after
    with sqlite3.connect(tmp_path / "user.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM transfers").fetchone() == (1,)


def test_a_refused_update_frees_the_users_nonce_but_never_the_nodes(tmp_path: Path) -> None:
    """The node refuses a user's update in a signed reply (its policy: say, an amount below
    its minimum): the user may propose another one at that nonce, and the node signs only
    that one. The user refusing the node's update frees nothing: the user holds the node's
    signature on it and could still take it, so the node re-sends the very same update."""
    wire = Wire(remote_errors=True)
    parties = Parties(tmp_path, wire)

    async def refuse_small(update: Update, _applied: Any) -> None:
        details = update.details
        if getattr(details, "balance", None) is not None and details.balance.total < 10:
            raise errors.AmountBelowMinimum("the node routes 10 and up")

    async def scenario() -> None:
        await parties.open()
        parties.engine(NODE).policy = refuse_small
        parties.engine(USER).policy = refuse_small
        nonce = (await parties.state(USER)).nonce + 1
        with pytest.raises(errors.AmountBelowMinimum):
            await parties.pay(USER, 5)
        user = await parties.engine(USER).channel(parties.channel)
        assert user is not None and user.pending_update is None
        await parties.pay(USER, 50)  # the same nonce, another update
        assert (await parties.state(USER)).nonce == nonce
        assert len(wire.signed["user", nonce]) == 2 and len(wire.signed["node", nonce]) == 1

        with pytest.raises(errors.AmountBelowMinimum):
            await parties.pay(NODE, 5)
        node = await parties.engine(NODE).channel(parties.channel)
        assert node is not None and node.pending_update is not None  # still takeable
        with pytest.raises(errors.AmountBelowMinimum):  # re-sent as it was, refused again
            await parties.pay(NODE, 500)
        assert len(wire.signed["node", nonce + 1]) == 1

    try:
        asyncio.run(scenario())
    finally:
        parties.close()


def test_a_proposal_the_node_made_void_is_reported_and_can_be_made_again(
    tmp_path: Path,
) -> None:
    """The user's create never reaches the node (every try lost); the node then proposes
    its own update at that nonce, which the user takes, voiding its own. The engine tells
    the user's client which proposal was voided (the client proposes it again: otherwise
    a payment the SDK called pending would silently never happen), once, and proposing
    it again on the new state makes the payment exactly once."""
    wire = Wire()
    parties = Parties(tmp_path, wire)
    voided: list[Update] = []

    async def scenario() -> tuple[int, int, int, int]:
        await parties.open()
        user = parties.engine(USER)

        async def on_void(update: Update) -> None:
            voided.append(update)

        user.on_void(on_void)
        before = (await parties.state(USER)).balance_of(ETH)
        wire.faults = lambda: "lose request"
        with pytest.raises(MessagingTimeout):
            await parties.pay(USER, 700)
        lost = await user.channel(parties.channel)
        assert lost is not None and lost.pending_update is not None
        wire.faults = lambda: "deliver"
        await parties.pay(NODE, 300)  # the node's update at the nonce of the user's
        await asyncio.sleep(0.05)  # the listener runs in its own task
        assert len(voided) == 1 and voided[0] == lost.pending_update
        again = voided[0].details
        assert isinstance(again, CreateDetails)
        await user.propose(parties.channel, lambda state, _t: create_update(
            state, USER.address, transfer_id=again.transfer_id,
            transfer_definition=again.transfer_definition, asset_id=again.asset_id,
            amount=again.balance.amount[0], initial_state=again.initial_state,
            transfer_timeout=again.transfer_timeout))
        with pytest.raises(errors.DuplicateTransfer):  # and never twice
            await user.propose(parties.channel, lambda state, _t: create_update(
                state, USER.address, transfer_id=again.transfer_id,
                transfer_definition=again.transfer_definition, asset_id=again.asset_id,
                amount=again.balance.amount[0], initial_state=again.initial_state,
                transfer_timeout=again.transfer_timeout))
        after = (await parties.state(USER)).balance_of(ETH)
        node = (await parties.state(NODE)).balance_of(ETH)
        assert len(voided) == 1
        return before.bob - after.bob, before.alice - after.alice, after.bob, node.bob

    try:
        user_paid, node_paid, user_balance, node_view = asyncio.run(scenario())
    finally:
        parties.close()
    assert (user_paid, node_paid) == (700, 300)  # both locked once
    assert user_balance == node_view


def test_a_retransmission_gets_the_countersigned_copy_only_with_the_initiators_signature(
    tmp_path: Path,
) -> None:
    """Updates come without envelope signatures, so the engine's answer to a
    retransmission (the stored double-signed copy) must not go to whoever can rebuild the
    update's content: only to a sender with the initiator's very signature on it."""
    parties = Parties(tmp_path, Wire())

    async def scenario() -> None:
        await parties.open()
        await parties.pay(USER, 100)
        stored = await parties.engine(USER).channel(parties.channel)
        assert stored is not None and stored.latest_update is not None
        latest = stored.latest_update  # the user's create, countersigned by the node
        assert stored.state.alice == NODE.address  # the user signs as bob
        node = parties.engine(NODE)
        sent = replace(latest, alice_signature=None)  # as the user sent it
        answer = await node.handle_update(USER.address, {"update": update_to_json(sent)})
        assert update_from_json(answer["update"], "") == latest

        for rebuilt in (replace(sent, bob_signature=None),
                        replace(sent, bob_signature=b"\x01" * 65)):
            with pytest.raises(errors.StaleNonce):
                await node.handle_update(USER.address, {"update": update_to_json(rebuilt)})

    try:
        asyncio.run(scenario())
    finally:
        parties.close()



async def _user_create(parties: Parties, tag: bytes) -> dict[str, Any]:
    """A create the user signed on the node's latest state, as it goes on the wire."""
    stored = await parties.engine(NODE).channel(parties.channel)
    assert stored is not None
    update, _applied = propose(stored.state, stored.transfers, create_update(
        stored.state, USER.address, transfer_id=hashlib.sha256(tag).digest(),
        transfer_definition=HASHLOCK_ADDR, asset_id=ETH, amount=10,
        initial_state=HASHLOCK.encode_state(hashlib.sha256(tag + b"lock").digest(), 0),
        transfer_timeout=600), USER, rules())
    return {"update": update_to_json(update)}


async def _waiting_behind_the_nodes_lock(
    parties: Parties, tag: bytes
) -> tuple[ChannelEngine, Any, int, asyncio.Future[dict[str, Any]]]:
    """Open the channel, hold the node's lock (its work in flight) and send a user's create:
    the node, its lock, the nonce before, and the handler's answer to come."""
    await parties.open()
    node = parties.engine(NODE)
    lock = node.lock(parties.channel)
    nonce = (await parties.state(NODE)).nonce
    body = await _user_create(parties, tag)
    await lock.acquire()
    answer = asyncio.ensure_future(node.handle_update(USER.address, body))
    await asyncio.sleep(0.05)
    return node, lock, nonce, answer


def test_the_users_update_waits_out_a_node_lock_that_signed_nothing_but_not_a_collision(
    tmp_path: Path,
) -> None:
    """The node's sweep or recovery may hold a channel's lock for a moment without signing
    anything (it looks, finds nothing to do): a user's update arriving then waits for the
    lock and is taken, instead of being refused busy and retried. An update the node did
    sign at the user's nonce is a true collision: refused at once, the node's wins."""
    parties = Parties(tmp_path, Wire())

    async def scenario() -> None:
        # a sweep looks at the channel, holding its lock
        node, lock, nonce, answer = await _waiting_behind_the_nodes_lock(parties, b"waits")
        assert not answer.done()  # waiting, not refused
        lock.release()
        countersigned = update_from_json((await answer)["update"], "")
        assert countersigned.alice_signature is not None
        assert (await parties.state(NODE)).nonce == nonce + 1

        body = await _user_create(parties, b"collides")
        await lock.acquire()  # the node's own update at that nonce is signed and sent
        node._proposing[parties.channel] = nonce + 2
        try:
            with pytest.raises(ChannelBusy):
                await node.handle_update(USER.address, body)
        finally:
            node._proposing.pop(parties.channel, None)
            lock.release()
        assert (await parties.state(NODE)).nonce == nonce + 1

    try:
        asyncio.run(scenario())
    finally:
        parties.close()


def test_an_update_waiting_for_the_lock_is_refused_once_the_channel_is_disputed(
    tmp_path: Path,
) -> None:
    """A dispute on chain stops every update after the one in flight: a user's update that
    was waiting for the node's lock when the dispute began is refused, and neither side's
    state moves (the dispute is settled on what was double-signed before)."""
    parties = Parties(tmp_path, Wire())

    async def scenario() -> None:
        node, lock, nonce, answer = await _waiting_behind_the_nodes_lock(parties, b"late")
        stopped = asyncio.ensure_future(node.stop_updating(parties.channel))
        await asyncio.sleep(0)
        lock.release()
        with pytest.raises(errors.ChannelDisputed):
            await answer
        await stopped
        assert (await parties.state(NODE)).nonce == nonce
        with pytest.raises(errors.ChannelDisputed):
            await parties.pay(NODE, 10)

    try:
        asyncio.run(scenario())
    finally:
        parties.close()
