"""NATS authorization with a real node: a third user who is logged in and listens on
everything it may sees nothing of two others' payment, and a forged node is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from connext.chain.anvil import Anvil
from connext.chain.deploy import Deployment
from connext.devstack import NatsServer
from connext.messaging.natsauth import inbox_prefix, login_options
from connext.node import Node, NodeConfig
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually
from .test_streams import _stream_arrived as _arrived


def test_a_logged_in_eavesdropper_sees_nothing_of_a_payment_between_others(
    clients: ClientFactory, node: NodeProcess
) -> None:
    async def scenario() -> None:
        alice, bob = await clients.connect(), await clients.connect()
        await alice.setup()
        await bob.setup()
        await alice.deposit(ETH, ETHER)
        eve = clients.signer()
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        raw = await nats.connect(clients.nats.url, error_cb=on_error, **login_options(eve))
        seen: list[Msg] = []

        async def listen(msg: Msg) -> None:
            seen.append(msg)

        a, b, n = (x.lower() for x in (alice.address, bob.address, node.address))
        mine = [f"connext.{eve.address.lower()}.>", f"{inbox_prefix(eve.address)}.>"]
        foreign = [">", "connext.>", "_INBOX.>", f"connext.{a}.>", f"connext.{b}.>",
                   f"connext.{n}.>", f"connext.*.{a}.>", f"connext.{n}.{a}.>",
                   f"{inbox_prefix(alice.address)}.>", f"{inbox_prefix(node.address)}.>"]
        for pattern in mine + foreign:
            await raw.subscribe(pattern, cb=listen)
        queue: dict[str, Any] = {"queue": "node"}
        await raw.subscribe(f"connext.{n}.>", cb=listen, **queue)
        await raw.flush()
        await asyncio.sleep(0.3)
        violations = [e for e in errors if "permissions violation" in e.lower()]
        assert len(violations) == len(foreign) + 1, errors

        result = await alice.transfer(bob.address, ETH, ETHER // 5)
        assert result.status == "completed"
        # bob commits his claim when the node's answer reaches him, a moment after the
        # node settled alice
        async def bob_was_paid() -> bool:
            return (await bob.channel()).balances[0].bob == ETHER // 5

        await eventually(bob_was_paid)
        stream = await alice.streams.open(bob.address, ETH, 10**15)
        await eventually(lambda: _arrived(bob, stream.routing_id))
        await asyncio.gather(*(stream.pay(10**12) for _ in range(10)))
        assert await stream.close() == "completed"
        await asyncio.sleep(0.5)
        assert seen == []
        await raw.close()
        await alice.close()
        await bob.close()

    asyncio.run(scenario())


def test_a_node_missing_from_the_auth_services_list_refuses_to_start(
    anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
    tmp_path: Path,
) -> None:
    config = NodeConfig(private_key="0x" + "99" * 32, nats_url=nats.url, chain_url=anvil.url,
                        database_url=f"sqlite:///{tmp_path / 'node.sqlite'}",
                        deployment_file=deployment_file, http_port=0)

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="not in the auth service's node list"):
            await Node(config, deployment).start()

    asyncio.run(scenario())
