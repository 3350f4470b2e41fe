"""Link payments through a real node: A locks a payment whose secret lives in a link, whoever
holds the link claims it into their own channel (once), A can take back an unclaimed link,
and an unclaimed link that expires is refunded."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from connext.client import Client, LinkPayment, parse_link_code
from connext.client.client import link_claim_digest, link_key
from connext.node.routing import forward_transfer_id
from connext.node.routing import link_claim_digest as node_link_claim_digest
from connext.protocol import errors
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH

from .conftest import REVEAL_DELTA, ClientFactory, NodeProcess
from .test_payments import ETHER, eventually, http_json

# --- the link code (no stack needed) -----------------------------------------------------


def test_link_code_round_trips_and_garbage_is_refused() -> None:
    link = LinkPayment(os.urandom(32), os.urandom(32), os.urandom(32), ETH, 5)
    assert parse_link_code(link.code) == (link.routing_id, link.secret)
    assert parse_link_code(f"  {link.code.upper().replace('0X', '0x')}\n") == (
        link.routing_id, link.secret)
    assert link.secret.hex() not in repr(link)
    good_id, good_secret = "0x" + "ab" * 32, "0x" + "cd" * 32
    for garbage in ["", ".", "0x", good_id, f"{good_id}.", f".{good_secret}",
                    f"{good_id}.{good_secret}.{good_secret}", f"{good_id[2:]}.{good_secret}",
                    f"{good_id}.{good_secret[:-2]}", f"{good_id}.{good_secret}00",
                    f"{good_id}.0x{'zz' * 32}", f"{good_id},{good_secret}",
                    f"0x{'ab' * 30}    .{good_secret}", f"0x{'00' * 32}.0x{'00' * 32}"[:-1],
                    f"https://wallet.example/redeem#{good_id}.{good_secret}", None, 42]:
        with pytest.raises(errors.InvalidLink) as raised:
            parse_link_code(garbage)  # type: ignore[arg-type]
        assert raised.value.code == "invalid_link"
        assert raised.value.message == "this is not a valid payment link"


def test_client_and_node_agree_on_what_a_claim_signs() -> None:
    routing_id, secret = os.urandom(32), os.urandom(32)
    redeemer = "0x" + "12" * 20
    assert link_claim_digest(routing_id, redeemer) == node_link_claim_digest(routing_id,
                                                                             redeemer)
    assert link_key(secret).address == link_key(secret).address
    assert link_key(secret).address != link_key(os.urandom(32)).address


def test_error_codes_are_stable() -> None:
    for cls, code, message in [
        (errors.UnknownLink, "unknown_link", "no such link"),
        (errors.LinkAlreadyClaimed, "link_already_claimed", "this link was already claimed"),
        (errors.LinkCancelled, "link_cancelled", "this link was cancelled"),
        (errors.InvalidLink, "invalid_link", "this is not a valid payment link"),
    ]:
        assert cls().to_dict() == {"code": code, "message": message}
        assert errors.error_class(code) is cls


# --- end to end ------------------------------------------------------------------------------


async def _funded(clients: ClientFactory, amount: int = 0) -> Client:
    client = await clients.connect()
    await client.setup()
    if amount:
        await client.deposit(ETH, amount)
    return client


def _events(client: Client, *kinds: str) -> dict[str, list[dict[str, Any]]]:
    seen: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for kind in kinds:
        client.on(kind, seen[kind].append)
    return seen


def _no_active_transfers(node: NodeProcess, *users: Client) -> bool:
    return not any(http_json(node.http_port, f"/channels/{u.channel_address}")["activeTransfers"]
                   for u in users)


def test_a_link_is_claimed_once(clients: ClientFactory, node: NodeProcess) -> None:
    async def scenario() -> None:
        alice = await _funded(clients, 2 * ETHER)
        bob = await _funded(clients)
        carol = await _funded(clients)
        alice_events = _events(alice, "transfer.completed", "transfer.cancelled")
        bob_events = _events(bob, "transfer.received", "transfer.incoming")
        try:
            link = await alice.create_link(ETH, ETHER // 4)
            assert (link.asset_id, link.amount) == (ETH, ETHER // 4)
            assert link.transfer_id in await alice.active_transfers()
            assert await alice.balances() == {ETH: 2 * ETHER - ETHER // 4}
            assert await bob.link_status(link.routing_id) == "open"

            result = await bob.redeem_link(link.code)
            assert result.status == "completed", result
            assert result.routing_id == link.routing_id
            assert await bob.balances() == {ETH: ETHER // 4}
            assert await alice.balances() == {ETH: 2 * ETHER - ETHER // 4}
            await eventually(lambda: len(alice_events["transfer.completed"]) == 1)
            assert alice_events["transfer.completed"][0]["transferId"] == (
                "0x" + link.transfer_id.hex())
            assert alice_events["transfer.cancelled"] == []
            assert [e["amount"] for e in bob_events["transfer.received"]] == [str(ETHER // 4)]
            assert bob_events["transfer.incoming"] == [], "a link we redeem is not 'incoming'"
            assert await alice.link_status(link.routing_id) == "claimed"
            await eventually(lambda: _no_active_transfers(node, alice, bob))
            # the forward expires the node's reveal delta before the link (7 days): time
            # for the node to settle alice, or to register the preimage on chain, after a
            # late claim by bob (docs/PROTOCOL.md)
            forward = await asyncio.to_thread(bob.store.get_transfer,
                                              forward_transfer_id(link.routing_id))
            assert forward is not None
            _lock, forward_expiry = HASHLOCK.decode_state(forward.initial_state)
            _lock, link_expiry = HASHLOCK.decode_state(
                (await asyncio.to_thread(alice.store.get_transfer, link.transfer_id)
                 ).initial_state)
            assert forward_expiry == link_expiry - REVEAL_DELTA
            assert link_expiry > time.time() + (await bob.channel()).timeout

            # a second claim, by anyone, fails and moves nothing; nor can alice cancel it now
            for user in (bob, carol):
                with pytest.raises(errors.LinkAlreadyClaimed) as raised:
                    await user.redeem_link(link.code)
                assert raised.value.message == "this link was already claimed"
            with pytest.raises(errors.LinkAlreadyClaimed):
                await alice.cancel_link(link.routing_id)
            assert await bob.balances() == {ETH: ETHER // 4}
            assert await carol.balances() == {}
            assert await alice.balances() == {ETH: 2 * ETHER - ETHER // 4}
            assert len(alice_events["transfer.completed"]) == 1
        finally:
            for user in (alice, bob, carol):
                await user.close()

    asyncio.run(scenario())


def test_bad_claims_and_cancelling(clients: ClientFactory, node: NodeProcess) -> None:
    async def scenario() -> None:
        alice = await _funded(clients, ETHER)
        bob = await _funded(clients)
        alice_events = _events(alice, "transfer.completed", "transfer.cancelled")
        try:
            link = await alice.create_link(ETH, ETHER // 10)
            assert await alice.balances() == {ETH: ETHER - ETHER // 10}

            # someone who knows the routing id but not the secret cannot sign the claim
            forged = LinkPayment(link.routing_id, link.transfer_id, os.urandom(32), ETH, 1)
            with pytest.raises(errors.InvalidSignature):
                await bob.redeem_link(forged.code)
            unknown = LinkPayment(os.urandom(32), link.transfer_id, link.secret, ETH, 1)
            with pytest.raises(errors.UnknownLink) as raised:
                await bob.redeem_link(unknown.code)
            assert raised.value.message == "no such link"
            assert await bob.link_status(unknown.routing_id) == "unknown"
            with pytest.raises(errors.TransferToSelf):
                await alice.redeem_link(link.code)
            with pytest.raises(errors.InvalidLink):
                await bob.redeem_link("not a link")
            with pytest.raises(errors.NotLinkCreator):
                await bob.cancel_link(link.routing_id)
            with pytest.raises(errors.UnknownLink):
                await alice.cancel_link(os.urandom(32))
            assert await bob.link_status(link.routing_id) == "open"
            assert await bob.balances() == {}

            # alice takes it back: her balance is back when cancel_link returns
            await alice.cancel_link(link.routing_id)
            assert await alice.balances() == {ETH: ETHER}
            assert link.transfer_id not in await alice.active_transfers()
            await eventually(lambda: len(alice_events["transfer.cancelled"]) == 1)
            assert alice_events["transfer.completed"] == []
            assert await bob.link_status(link.routing_id) == "cancelled"
            with pytest.raises(errors.LinkCancelled) as cancelled:
                await bob.redeem_link(link.code)
            assert cancelled.value.message == "this link was cancelled"
            with pytest.raises(errors.LinkCancelled):
                await alice.cancel_link(link.routing_id)
            assert await bob.balances() == {}
            assert await alice.balances() == {ETH: ETHER}
            assert _no_active_transfers(node, alice, bob)
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("node_database_url", ["sqlite", "postgresql"], indirect=True)
def test_concurrent_redeems_exactly_one_is_paid(clients: ClientFactory,
                                                node: NodeProcess) -> None:
    async def scenario() -> None:
        alice = await _funded(clients, ETHER)
        bob = await _funded(clients)
        carol = await _funded(clients)
        try:
            amount = ETHER // 8
            for round_ in range(3):
                link = await alice.create_link(ETH, amount)
                outcomes = await asyncio.gather(bob.redeem_link(link.code),
                                                carol.redeem_link(link.code),
                                                return_exceptions=True)
                paid = [o for o in outcomes if not isinstance(o, BaseException)]
                refused = [o for o in outcomes if isinstance(o, BaseException)]
                assert len(paid) == 1 and len(refused) == 1, outcomes
                assert paid[0].status == "completed"
                assert isinstance(refused[0], errors.LinkAlreadyClaimed), refused
                total = (await bob.balances()).get(ETH, 0) + (await carol.balances()).get(ETH, 0)
                assert total == amount * (round_ + 1)
            assert await alice.balances() == {ETH: ETHER - 3 * amount}
            await eventually(lambda: _no_active_transfers(node, alice, bob, carol))
        finally:
            for user in (alice, bob, carol):
                await user.close()

    asyncio.run(scenario())


def test_an_unclaimed_link_expires_and_is_refunded(clients: ClientFactory,
                                                   node: NodeProcess) -> None:
    async def scenario() -> None:
        alice = await _funded(clients, ETHER)
        bob = await _funded(clients)
        refunds = _events(alice, "transfer.cancelled")["transfer.cancelled"]
        try:
            link = await alice.create_link(ETH, ETHER // 2, timeout=8)
            assert await alice.balances() == {ETH: ETHER // 2}
            await eventually(lambda: len(refunds) == 1, timeout=30)
            assert await alice.balances() == {ETH: ETHER}
            assert await bob.link_status(link.routing_id) == "cancelled"
            with pytest.raises(errors.LinkCancelled):
                await bob.redeem_link(link.code)
            with pytest.raises(errors.LinkCancelled):
                await alice.cancel_link(link.routing_id)
            assert await bob.balances() == {}
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(scenario())


def test_links_survive_a_node_restart(clients: ClientFactory, node: NodeProcess) -> None:
    async def scenario() -> None:
        alice = await _funded(clients, ETHER)
        bob = await _funded(clients)
        try:
            kept = await alice.create_link(ETH, ETHER // 4)
            taken_back = await alice.create_link(ETH, ETHER // 4)
            node.kill()  # SIGKILL: whatever the node recorded is all it has
            node.start()
            await alice.sync()
            await bob.sync()
            assert await bob.link_status(kept.routing_id) == "open"
            result = await bob.redeem_link(kept.code)
            assert result.status == "completed"
            await alice.cancel_link(taken_back.routing_id)
            assert await bob.balances() == {ETH: ETHER // 4}
            assert await alice.balances() == {ETH: ETHER - ETHER // 4}
            await eventually(lambda: _no_active_transfers(node, alice, bob))
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(scenario())
