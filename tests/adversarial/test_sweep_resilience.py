"""One payment whose settlement keeps failing never stops the node's work on the others.

A hostile sender refuses every resolve of its payment with an error; an honest sender's
payment, settled later by the node's periodic sweep (its sender was offline when the
recipient claimed), is still settled. The failures are logged and counted in /metrics.
"""

from __future__ import annotations

import asyncio
import urllib.request

from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from ..integration.test_node_http import metric
from .kit import connect_hostile, until

ETHER = 10**18


def test_a_sender_refusing_to_settle_does_not_stop_the_sweep(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        refuser = await connect_hostile(clients, "refuser")
        honest = await connect_hostile(clients, "honest")
        payee = await clients.connect()
        for client in (refuser, honest, payee):
            await client.setup()
        for client in (refuser, honest):
            await client.deposit(ETH, ETHER)

        # the refuser's payment: delivered, claimed, and the refuser never settles it
        refuser.refuse = lambda update: update.get("type") == "resolve"
        first = await refuser.transfer(payee.address, ETH, ETHER // 10, wait=5)
        assert first.status == "pending" and await payee.balances() == {ETH: ETHER // 10}

        # the honest sender's payment is claimed while it is away ...
        await honest.go_silent()
        second = await honest.transfer(payee.address, ETH, ETHER // 10, wait=None)

        async def claimed() -> bool:
            return await payee.balances() == {ETH: 2 * ETHER // 10}

        await until(claimed, 30, "the payee claims the honest sender's payment")
        assert second.transfer_id in await honest.active_transfers()  # not settled yet
        # ... and it comes back without telling the node: only the sweep settles it,
        # after the refuser's payment failed again before it in the same sweep
        await honest.come_back()
        await until(lambda: _has(honest, second.transfer_id, False), 30,
                    "the sweep settles the honest sender")
        assert await honest.balances() == {ETH: ETHER - ETHER // 10}
        assert second.transfer_id not in await honest.active_transfers()
        assert first.transfer_id in await refuser.active_transfers()

        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics") as reply:
            text = reply.read().decode()
        assert metric(text, 'connext_background_failures_total{task="sweep"}') >= 1
        for client in (refuser, honest, payee):
            await client.close()

    asyncio.run(scenario())


async def _has(client: object, transfer_id: bytes, active: bool) -> bool:
    transfers = await client.active_transfers()  # type: ignore[attr-defined]
    return (transfer_id in transfers) == active
