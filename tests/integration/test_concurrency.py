"""20 clients, 50 payments each, concurrently in both directions through one node."""

from __future__ import annotations

import asyncio

from connext.client import Client
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

CLIENTS = 20
PAYMENTS = 50


def test_twenty_clients_pay_each_other_concurrently(clients: ClientFactory,
                                                    node: NodeProcess) -> None:
    async def scenario() -> None:
        users: list[Client] = list(await asyncio.gather(
            *(clients.connect() for _ in range(CLIENTS))))
        await asyncio.gather(*(u.setup() for u in users))
        await asyncio.gather(*(u.deposit(ETH, ETHER) for u in users))

        # pairs (0,1), (2,3), ...: each pays the other PAYMENTS times, both at once
        async def pay_many(payer: Client, payee: Client, amount: int) -> list[str]:
            statuses = []
            for _ in range(PAYMENTS):
                result = await payer.transfer(payee.address, ETH, amount, wait=60)
                statuses.append(result.status)
            return statuses

        amounts = [10**15 * (i + 1) for i in range(CLIENTS)]
        runs = [pay_many(users[i], users[i ^ 1], amounts[i]) for i in range(CLIENTS)]
        outcomes = await asyncio.gather(*runs)
        counts = {s: sum(x.count(s) for x in outcomes) for s in {"completed", "pending",
                                                                  "cancelled"}}
        assert counts["completed"] == CLIENTS * PAYMENTS, counts

        for i, user in enumerate(users):
            expected = ETHER - PAYMENTS * amounts[i] + PAYMENTS * amounts[i ^ 1]
            assert await user.balances() == {ETH: expected}, i
            # both sides agree on the nonce: read both each time, as either may still be
            # committing its last update (the node right after its reply, the user when
            # the reply to its own resolve arrives)
            async def agree(u: Client = user) -> bool:
                node_nonce = int(node.channel(u.channel_address)["state"]["nonce"])
                return node_nonce == (await u.channel()).nonce

            await eventually(agree)
            theirs = node.channel(user.channel_address)["state"]
            node_side, user_side = (int(x) for x in theirs["balances"][0])
            assert user_side == expected
            # funds conserve in every channel: nothing is locked, nothing appeared
            assert node_side + user_side == (int(theirs["processedDepositsA"][0])
                                             + int(theirs["processedDepositsB"][0]))
            assert await user.active_transfers() == {}
        await asyncio.gather(*(u.close() for u in users))

    asyncio.run(scenario())
