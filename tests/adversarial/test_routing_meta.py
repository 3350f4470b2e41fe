"""A sender who bends a routed payment's meta gets nothing out of the node.

- Hijack: while an honest payment waits for its offline recipient, an attacker sends its
  own transfer to the node under the honest payment's routing id, naming an accomplice as
  the recipient and locking it with a preimage it knows. Were the node to forward it, the
  accomplice would be paid, and the node would try to collect from the honest sender's
  transfer (whose lock the attacker's preimage does not open): the node would pay out of
  its own pocket. The node refuses the attacker's transfer before signing anything.
- Junk: a routing id that is not 32 bytes, a recipient that is not an address (text, a
  number, an object): refused before anything is locked, with a typed error.
The honest payment reaches its recipient once it is back, and the recipient takes it out
on chain, to the wei; the attacker's and the accomplice's channels hold what they held.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from connext.chain.contracts import connect
from connext.client.client import DEFAULT_PAYMENT_TIMEOUT
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from .kit import connect_hostile, eth, until

ETHER = 10**18
PAID = ETHER // 10
STOLEN = ETHER // 4


def test_a_sender_can_neither_hijack_a_routing_id_nor_route_on_junk_meta(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        honest = await clients.connect()
        recipient_signer = clients.signer()
        recipient = await connect_hostile(clients, "recipient", recipient_signer)
        attacker = await connect_hostile(clients, "attacker")
        accomplice = await clients.connect()
        for client in (honest, recipient, attacker, accomplice):
            await client.setup()
        await honest.deposit(ETH, ETHER)
        await attacker.deposit(ETH, ETHER)
        # the accomplice has collateral from the node already: a first payment to it
        assert (await attacker.transfer(accomplice.address, ETH, 10**15)).status == "completed"
        attacker_before = await attacker.balances()
        accomplice_before = await accomplice.balances()

        # the honest payment waits for its recipient, who is away
        await recipient.go_silent()
        payment = await honest.transfer(recipient.address, ETH, PAID, wait=None)
        assert payment.status == "pending"

        # the attacker's transfer under the same routing id, to its accomplice
        preimage = os.urandom(32)
        expiry = int(time.time()) + DEFAULT_PAYMENT_TIMEOUT
        with pytest.raises(errors.ProtocolError) as refused:
            await attacker._route(
                ETH, STOLEN, "Hashlock", HASHLOCK.encode_state(lock_hash(preimage), expiry),
                DEFAULT_PAYMENT_TIMEOUT, {"recipient": accomplice.address}, None,
                payment.routing_id)
        assert refused.value.code == "routing_id_taken"

        # junk meta: refused before anything is locked
        junk = [
            ({"recipient": "0x1234"}, "invalid_update"),
            ({"recipient": 42}, "invalid_update"),
            ({"recipient": {"address": accomplice.address}}, "invalid_update"),
            ({"recipient": "'); DROP TABLE routings; --"}, "invalid_update"),
        ]
        for meta, code in junk:
            lock = HASHLOCK.encode_state(lock_hash(os.urandom(32)), expiry)
            with pytest.raises(errors.ProtocolError) as bad:
                await attacker._route(ETH, PAID, "Hashlock", lock, DEFAULT_PAYMENT_TIMEOUT,
                                      meta, None, os.urandom(32))
            assert bad.value.code == code, meta
        for routing_id in ("0x1234", 7, "0x" + "zz" * 32):
            lock = HASHLOCK.encode_state(lock_hash(os.urandom(32)), expiry)
            with pytest.raises(errors.ProtocolError) as bad:
                await attacker.engine.propose(attacker.channel_address, lambda s, _t, r=routing_id,
                                              x=lock: _routed_create(attacker, s, x, r,
                                                                     accomplice.address))
            assert bad.value.code == "invalid_update", routing_id
        assert await attacker.active_transfers() == {}
        assert await attacker.balances() == attacker_before
        assert await accomplice.balances() == accomplice_before

        # the recipient comes back: the honest payment is delivered and claimed
        await recipient.come_back()
        await recipient.recovery.round()
        await until(lambda: _status(honest, payment.routing_id, "completed"), 30,
                    "the honest payment completes")
        assert await recipient.balances() == {ETH: PAID}
        assert await accomplice.balances() == accomplice_before

        # ... and the recipient takes it out on chain, to the wei
        cold = Signer.random().address
        fee = await recipient.withdrawal_fee(ETH)
        result = await recipient.withdraw(cold, ETH, PAID, wait=30)
        assert result.status == "confirmed"
        assert eth(w3, cold) == PAID - fee
        assert await recipient.balances() == {ETH: 0}
        for client in (honest, recipient, attacker, accomplice):
            await client.close()

    asyncio.run(scenario())


def _routed_create(attacker, state, initial_state, routing_id, recipient):  # type: ignore[no-untyped-def]
    from connext.protocol.channel import create_update
    return create_update(
        state, attacker.address, transfer_id=os.urandom(32),
        transfer_definition=attacker.definition_address["Hashlock"], asset_id=ETH,
        amount=PAID, initial_state=initial_state,
        transfer_timeout=attacker._transfer_timeout(DEFAULT_PAYMENT_TIMEOUT),
        meta={"recipient": recipient, "routingId": routing_id})


async def _status(client, routing_id, status):  # type: ignore[no-untyped-def]
    return await client.payment_status(routing_id=routing_id) == status
