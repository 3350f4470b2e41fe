"""The node takes back idle collateral above its reclaim threshold, with the user's
countersignature, paid on chain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.client import Client
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


def test_a_reclaim_cut_off_by_a_node_crash_still_lands(clients: ClientFactory,
                                                       node: NodeProcess) -> None:
    """The node dies right after it proposed its reclaim: the user's countersignature finds
    nobody to answer. The user's recovery sends it again once the node is back, and the
    reclaim is paid on chain; nothing stays locked."""
    async def scenario() -> None:
        payer = await Client.connect(
            clients.signer(), node_address=node.address, nats_url=clients.nats.url,
            chain_url=clients.anvil.url, deployment=clients.deployment, request_timeout=2,
            database_url=f"sqlite:///{clients.tmp_path / 'payer.sqlite'}")
        payee = await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, 2 * ETHER)
        w3 = connect(clients.anvil.url)
        onchain = ChannelContract(w3, payer.channel_address, node.address, payer.address)
        killed: list[int] = []

        async def kill_on_reclaim(event: dict[str, object]) -> None:
            if event.get("type") != "create" or killed:
                return
            if any(t.initiator == node.address for t in (await payer.active_transfers()).values()):
                node.kill()  # the node proposed its reclaim: before our countersignature
                killed.append(1)

        payer.on("channel.updated", kill_on_reclaim)
        assert (await payer.transfer(payee.address, ETH, 6 * ETHER // 10)).status == (
            "completed")
        await eventually(lambda: killed, timeout=30)
        await asyncio.sleep(3 * 2 + 1)  # the countersignature and its retries all failed
        assert len(await payer.active_transfers()) == 1  # the reclaim, not countersigned
        node.start()
        await eventually(lambda: onchain.is_deployed()
                         and onchain.total_transferred(ETH) == 6 * ETHER // 10 - TARGET,
                         timeout=60)
        await eventually(lambda: _none_active(payer), timeout=30)
        assert int(node.channel(payer.channel_address)["state"]["balances"][0][0]) == TARGET
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


async def _none_active(client: Any) -> bool:
    return not await client.active_transfers()
