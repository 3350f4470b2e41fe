"""Collateral a user made the node lock does not stay locked: once the channel is idle, the
node takes its whole balance there back on chain (with the user's countersignature); the
next payment into the channel collateralizes again, just in time."""

from __future__ import annotations

import asyncio

import pytest

from connext.chain.contracts import connect
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from ..integration.test_payments import balances_are
from .kit import until, withdrawn

ETHER = 10**18
AMOUNT = ETHER // 10
BUFFER = min(10 * AMOUNT, ETHER)  # ten more such payments, at most the default target


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    return {"CONNEXT_IDLE_RECLAIM_AFTER": "3", "CONNEXT_RECLAIM_INTERVAL": "1"}


def test_idle_collateral_goes_back_to_the_node_on_chain(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        assert (await payer.transfer(payee.address, ETH, AMOUNT)).status == "completed"

        def node_side(client: object) -> int:
            return int(node.channel(client.channel_address)  # type: ignore[attr-defined]
                       ["state"]["balances"][0][0])

        # just in time: the payee's channel got the payment and a buffer
        await until(lambda: node_side(payee) in (BUFFER, 0), 10)
        # idle for a few seconds: the node reclaims what it holds in both channels
        await until(lambda: withdrawn(w3, payee.channel_address, node.address) == BUFFER, 60,
                    "the collateral left in the payee's channel comes back")
        await until(lambda: withdrawn(w3, payer.channel_address, node.address) == AMOUNT, 60,
                    "the payment the node received comes back")
        assert node_side(payee) == 0 and node_side(payer) == 0
        assert await payee.balances() == {ETH: AMOUNT}
        assert await payer.balances() == {ETH: ETHER - AMOUNT}

        # the next payment collateralizes again
        assert (await payer.transfer(payee.address, ETH, AMOUNT)).status == "completed"
        # the payee commits its claim when the node's answer reaches it
        await until(lambda: balances_are(payee, {ETH: 2 * AMOUNT}), 10, "the payee has both")
        await payer.close()
        await payee.close()

    asyncio.run(scenario())
