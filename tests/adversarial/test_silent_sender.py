"""A sender goes silent after its payment's forward was resolved near its expiry: the
node, which paid the recipient, still collects on chain what the sender owes it.

The attack without the secret registry: the recipient claims the forward moments before
it expires, the node pays it, and the sender never countersigns the node's resolve; its
lock expires a few seconds later and it keeps its money. Now the node registers the
preimage before the sender's lock expires, disputes the sender's channel once the sender
stayed silent past the expiry, and resolves the transfer on chain with the preimage.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect, contract
from connext.node.routing import forward_transfer_id
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from .conftest import DAY
from .kit import connect_hostile, exited, travel, until

ETHER = 10**18
AMOUNT = ETHER // 10


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    return {"CONNEXT_REVEAL_DELTA": "12", "CONNEXT_REVEAL_MARGIN": "8",
            "CONNEXT_DISPUTE_UNSETTLED_AFTER": "0"}


def test_sender_silent_after_forward_resolved_near_expiry_node_still_collects(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        sender = await connect_hostile(clients, "sender")
        recipient = await connect_hostile(clients, "recipient")
        await sender.setup()
        await recipient.setup()
        await sender.deposit(ETH, ETHER)

        # 1. the sender pays; the recipient holds its claim back for now
        recipient.hold_claims = True
        payment = await sender.transfer(recipient.address, ETH, AMOUNT, timeout=25, wait=None)
        forward_id = forward_transfer_id(payment.routing_id)
        await until(lambda: recipient.active_transfers(), what="the forward arrives")
        forward = (await recipient.active_transfers())[forward_id]
        lock, forward_expiry = HASHLOCK.decode_state(forward.initial_state)
        sender_transfer = (await sender.active_transfers())[payment.transfer_id]
        _lock, sender_expiry = HASHLOCK.decode_state(sender_transfer.initial_state)
        assert forward_expiry == sender_expiry - 12

        # 2. the sender goes silent; the recipient claims just before the forward expires
        await sender.go_silent()
        await asyncio.sleep(max(0.0, forward_expiry - 4 - time.time()))
        await recipient.release_claims()
        assert await recipient.balances() == {ETH: AMOUNT}  # the node paid it

        # 3. the node registers the preimage before the sender's lock expires ...
        registry = contract(w3, "SecretRegistry", clients.deployment.secret_registry)
        await until(lambda: registry.functions.registered_at(lock).call() != 0, 30,
                    "the node registers the preimage")
        assert registry.functions.registered_at(lock).call() <= sender_expiry
        # ... and, the sender still silent after the expiry, disputes its channel
        channel = ChannelContract(w3, sender.channel_address, node.address, sender.address)
        await until(lambda: channel.is_deployed() and channel.channel_dispute().nonce > 0, 60,
                    "the node disputes the silent sender's channel")
        node_view = node.channel(sender.channel_address)
        node_balance = int(node_view["state"]["balances"][0][0])  # the node's latest
        assert len(node_view["activeTransfers"]) == 1  # the unsettled payment

        # 4. a day later (every lock long expired) the node's exit collects the payment
        travel(clients.anvil, DAY + 60)
        await until(lambda: exited(w3, sender.channel_address, node.address)
                    == node_balance + AMOUNT, 90, "the node exits with what it is owed")

        await sender.close()
        await recipient.close()

    asyncio.run(scenario())
