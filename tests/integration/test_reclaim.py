"""The node takes back idle collateral above its reclaim threshold, with the user's
countersignature, paid on chain."""

from __future__ import annotations

import asyncio
import json

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

TARGET = ETHER // 10
RECLAIM_ABOVE = ETHER // 2


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    profile = {"threshold": "0", "target": str(TARGET), "reclaimThreshold": str(RECLAIM_ABOVE)}
    return {"CONNEXT_COLLATERAL": json.dumps({ETH: profile})}


def test_node_reclaims_collateral_above_the_threshold(clients: ClientFactory,
                                                      node: NodeProcess) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, 2 * ETHER)
        w3 = connect(clients.anvil.url)
        onchain = ChannelContract(w3, payer.channel_address, node.address, payer.address)

        assert (await payer.transfer(payee.address, ETH, 6 * ETHER // 10)).status == (
            "completed")

        def node_side() -> int:
            return int(node.channel(payer.channel_address)["state"]["balances"][0][0])

        # the node held 0.6 ETH of the payer's payment, above 0.5: it keeps the target
        await eventually(lambda: node_side() == TARGET, timeout=30)
        await eventually(lambda: onchain.is_deployed()
                         and onchain.total_transferred(ETH) == 6 * ETHER // 10 - TARGET,
                         timeout=30)
        assert await payer.balances() == {ETH: 2 * ETHER - 6 * ETHER // 10}
        assert await payer.active_transfers() == {}
        await payer.close()
        await payee.close()

    asyncio.run(scenario())
