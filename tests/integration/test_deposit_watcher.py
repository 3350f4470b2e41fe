"""Deposits sent straight to a channel address are noticed and reconciled by the node,
including those made while the node was down (the watcher resumes from its last block)."""

from __future__ import annotations

import asyncio
from typing import Any

from connext.chain.contracts import Sender, connect, contract
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually


def test_node_reconciles_plain_deposits_and_catches_up_after_a_restart(
    clients: ClientFactory, node: NodeProcess
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> None:
        user = await clients.connect()
        await user.setup()
        reconciled: list[dict[str, Any]] = []
        user.on("deposit.reconciled", reconciled.append)
        w3 = connect(clients.anvil.url)
        friend = Sender(w3, "0x" + clients.signer().private_key.hex())  # has ETH and tokens

        # someone else pays into the channel with a plain ETH transfer
        await asyncio.to_thread(friend.send_eth, user.channel_address, ETHER // 3)

        async def balance(asset: str) -> int:
            return (await user.balances()).get(asset, 0)

        async def has(asset: str, amount: int) -> bool:
            return await balance(asset) == amount

        await eventually(lambda: has(ETH, ETHER // 3))

        # a token deposit while the node is down is picked up when it comes back
        node.stop()
        tokens = contract(w3, "TestToken", token)
        await asyncio.to_thread(
            friend.transact, tokens.functions.transfer(user.channel_address, 5 * ETHER))
        node.start()
        await user.sync()
        await eventually(lambda: has(token, 5 * ETHER), timeout=30)
        # the event is emitted right after the commit that updates the balance
        await eventually(lambda: {r["assetId"] for r in reconciled} >= {ETH, token})
        await user.close()

    asyncio.run(scenario())
