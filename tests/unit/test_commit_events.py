"""A party's activity-log events are stored in the transaction of the update they describe
(the engine's `records`): whichever side proposed it, an event is there exactly when its
update is, and a `records` that fails costs the event, never the commit.

Two real engines with their own SQLite stores, over the in-memory wire of
test_engine_faults."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connext.engine import ChannelEngine
from connext.engine.engine import Committed
from connext.protocol.signing import Signer

from .test_engine_faults import NODE, USER, Parties, Wire, rules


def _with_records(parties: Parties, signer: Signer, records: Any) -> ChannelEngine:
    engine = ChannelEngine(
        signer, parties.stores[signer.address], parties.wire.endpoint(signer.address), rules,
        parties.chain, request_timeout=1.0, yields_on_collision=signer is USER,
        records=records,
    )
    parties.wire.engines[signer.address] = engine
    return engine


def _nonce_event(committed: Committed) -> list[tuple[str, Mapping[str, Any]]]:
    return [("update.stored", {"nonce": committed.update.nonce,
                               "type": committed.update.type.value})]


def test_each_update_stores_its_event_with_it_on_either_side(tmp_path: Path) -> None:
    async def scenario() -> None:
        parties = Parties(tmp_path, Wire())
        user = _with_records(parties, USER, _nonce_event)
        told: list[Committed] = []

        async def listen(committed: Committed) -> None:
            told.append(committed)

        user.on_commit(listen)
        try:
            await parties.open()        # the node's setup (user responds), the user's deposit
            await parties.pay(USER, 10)   # the user proposes
            await parties.pay(NODE, 7)    # the node proposes, the user countersigns
            await asyncio.sleep(0.05)     # the listeners run in tasks of their own
            state = await parties.state(USER)
            store = parties.stores[USER.address]
            events = await asyncio.to_thread(store.events, parties.channel)
            assert [(e.kind, e.payload["nonce"]) for e in events] == [
                ("update.stored", nonce) for nonce in range(1, state.nonce + 1)]
            # the listeners hear of the events the commit stored
            assert sorted(e["nonce"] for c in told for _k, e in c.events) == list(
                range(1, state.nonce + 1))
            # the node, without `records`, stored none
            node_events = await asyncio.to_thread(parties.stores[NODE.address].events,
                                                  parties.channel)
            assert node_events == []
        finally:
            parties.close()

    asyncio.run(scenario())


def test_a_failing_records_costs_the_event_not_the_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        parties = Parties(tmp_path, Wire())

        def broken(committed: Committed) -> list[tuple[str, Mapping[str, Any]]]:
            raise RuntimeError("a bug in the event code")

        _with_records(parties, USER, broken)
        try:
            await parties.open()
            await parties.pay(USER, 10)
            await parties.pay(NODE, 7)
            user_state, node_state = await parties.state(USER), await parties.state(NODE)
            assert user_state == node_state
            assert user_state.nonce == 4
            assert await asyncio.to_thread(parties.stores[USER.address].events,
                                           parties.channel) == []
        finally:
            parties.close()

    asyncio.run(scenario())
