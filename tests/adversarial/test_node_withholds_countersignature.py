"""A node withholds its countersignature of the recipient's resolve and collects from the
sender with the preimage it learnt: the recipient is still paid, on chain.

The attack without the secret registry: the recipient's resolve reveals the preimage to
the node, which never countersigns it but resolves the sender's transfer with it; the
forward's lock expires and, since a transfer can only be disputed after the channel's
consensus window, the recipient can never claim it. Now the recipient's client registers
the preimage on chain before the lock expires, and disputes later at leisure.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from connext.chain.anvil import Anvil
from connext.chain.contracts import connect, contract
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.devstack import NatsServer
from connext.node.routing import forward_transfer_id, routing_id_of
from connext.protocol import errors
from connext.protocol.channel import resolve_update
from connext.protocol.serialization import update_from_json
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH, ResolveDetails

from .conftest import DAY
from .kit import HostileNode, eth, node_config, start_hostile_node, travel, until

ETHER = 10**18
AMOUNT = ETHER // 10
NODE_KEY = "0x" + "5a" * 32


async def _client(anvil: Anvil, nats: NatsServer, deployment: Deployment, node: HostileNode,
                  tmp_path: Path, name: str, **kwargs: Any) -> Client:
    signer = Signer.random()
    anvil.set_balance(signer.address, 10**22)
    return await Client.connect(
        signer, node_address=node.address, nats_url=nats.url, chain_url=anvil.url,
        database_url=f"sqlite:///{tmp_path / f'{name}.sqlite'}", deployment=deployment,
        watch_interval=1.0, **kwargs)


def test_node_withholds_countersignature_recipient_is_paid_on_chain(
    anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        w3 = connect(anvil.url)
        node = await start_hostile_node(
            node_config(anvil, nats.url, deployment_file, tmp_path, NODE_KEY,
                        reveal_delta=12, reveal_margin=6), deployment)
        anvil.set_balance(node.address, 10**24)
        sender = await _client(anvil, nats, deployment, node, tmp_path, "sender")
        recipient = await _client(anvil, nats, deployment, node, tmp_path, "recipient",
                                  reveal_margin=8)
        await sender.setup()
        await recipient.setup()
        await sender.deposit(ETH, ETHER)
        learnt: list[bytes] = []

        async def withhold_and_collect(from_: str, body: dict[str, Any]) -> None:
            """The node answers the recipient's resolve with an error, and resolves the
            sender's transfer with the preimage it just saw."""
            update = update_from_json(body["update"])
            details = update.details
            if from_ != recipient.address or not isinstance(details, ResolveDetails):
                return None
            if not learnt:
                learnt.append(details.resolver)
                forward = node.store.get_transfer(details.transfer_id)
                assert forward is not None
                routing = node.store.get_routing(routing_id_of(forward) or b"")
                assert routing is not None
                await node.engine.propose(routing.sender_channel, lambda s, _t: resolve_update(
                    s, node.address, routing.sender_transfer_id, details.resolver))
            raise errors.InvalidUpdate("not now")

        node.bend = withhold_and_collect
        payment = await sender.transfer(recipient.address, ETH, AMOUNT, timeout=40, wait=None)
        forward_id = forward_transfer_id(payment.routing_id)

        # the node collected from the sender with the recipient's preimage ...
        async def sender_settled() -> bool:
            return bool(learnt) and await sender.active_transfers() == {}

        await until(sender_settled, what="the node collects from the sender")
        assert await sender.balances() == {ETH: ETHER - AMOUNT}
        assert await sender.active_transfers() == {}
        # ... but never countersigned the recipient's resolve
        forward = (await recipient.active_transfers())[forward_id]
        assert await recipient.balances() == {ETH: 0}
        lock, forward_expiry = HASHLOCK.decode_state(forward.initial_state)

        # the recipient registers the preimage before the forward's lock expires
        registry = contract(w3, "SecretRegistry", deployment.secret_registry)
        await until(lambda: registry.functions.registered_at(lock).call() != 0, 45,
                    "the recipient registers its preimage")
        assert registry.functions.registered_at(lock).call() <= forward_expiry
        await asyncio.sleep(max(0.0, forward_expiry + 1 - time.time()))

        # and, whenever it likes (here: after the lock expired), takes its money on chain
        await recipient.force_close()
        travel(anvil, DAY + 60)
        cold = Signer.random().address
        progress = await recipient.exit_channel(cold)
        assert progress.done and progress.paid_out == {ETH: AMOUNT}
        assert eth(w3, cold) == AMOUNT  # the recipient is paid what the sender paid

        await sender.close()
        await recipient.close()
        await node.stop()

    asyncio.run(scenario())
