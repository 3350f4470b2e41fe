"""Concurrent collateral top-ups in one token all land: twenty payments in TEST to twenty
users whose channels hold no TEST collateral yet make the node deposit into twenty channels
at once; no approval of one races another's deposit."""

from __future__ import annotations

import asyncio

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.store import ChannelStore

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER

RECIPIENTS = 20


def test_twenty_concurrent_token_collateral_top_ups_all_land(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer = await clients.connect()
        await payer.setup()
        await payer.deposit(token, 100 * ETHER)
        recipients = [await clients.connect() for _ in range(RECIPIENTS)]
        for recipient in recipients:
            await recipient.setup()

        results = await asyncio.gather(*(
            payer.transfer(r.address, token, ETHER, wait=60) for r in recipients))

        assert [r.status for r in results] == ["completed"] * RECIPIENTS
        for recipient in recipients:
            assert await recipient.balances() == {token: ETHER}
            channel = ChannelContract(w3, recipient.channel_address, node.address,
                                      recipient.address)
            assert channel.total_deposits_alice(token) >= ETHER
        assert await payer.balances() == {token: 100 * ETHER - RECIPIENTS * ETHER}
        for client in (payer, *recipients):
            await client.close()

    asyncio.run(scenario())
    store = ChannelStore.open(node.env["CONNEXT_NODE_DATABASE_URL"])
    try:  # every collateral transaction was mined and succeeded (none reverted, none retried)
        deposits = [t for t in store.transactions(sender=node.address)
                    if t.purpose == "collateral"]
    finally:
        store.close()
    assert len(deposits) == RECIPIENTS
    assert {t.receipt_status for t in deposits} == {1}
