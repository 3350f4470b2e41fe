"""Griefing with dust: payments of 1 wei to 50 fresh keys each make the node deploy a
channel and lock collateral there. The node collateralizes just in time (what a payment
needs plus a buffer of ten such payments, at most the profile's target) and never beyond the cap per
channel, so 50 dust payments lock dust; and by default a payment that small is refused
before anything is signed or locked.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.client import Client
from connext.protocol import errors
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess

ETHER = 10**18
CAP = 10**12
FRESH_KEYS = 50


@pytest.fixture
def node_extra_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(getattr(request, "param", {}))


DUST_ALLOWED = {
    "CONNEXT_LIMITS": json.dumps({ETH: {"minPayment": "1"}}),
    "CONNEXT_COLLATERAL": json.dumps({ETH: {"threshold": "0", "target": str(10**17),
                                            "reclaimThreshold": str(10**19), "cap": str(CAP)}}),
}


async def _fresh(clients: ClientFactory) -> Client:
    """A fresh key with a channel, gone offline again."""
    client = await Client.connect(
        clients.signer(), node_address=clients.node.address, nats_url=clients.nats.url,
        chain_url=clients.anvil.url, deployment=clients.deployment, watch_interval=0,
        database_url=f"sqlite:///{clients.tmp_path / f'fresh-{clients.count}.sqlite'}")
    clients.count += 1
    await client.setup()
    await client.close()
    return client


@pytest.mark.parametrize("node_extra_env", [DUST_ALLOWED], indirect=True)
def test_fifty_dust_payments_to_fresh_keys_lock_at_most_the_cap_per_channel(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer = await clients.connect()
        await payer.setup()
        await payer.deposit(ETH, ETHER)
        fresh = [await _fresh(clients) for _ in range(FRESH_KEYS)]
        for key in fresh:
            # the recipients are offline: the forward waits, the collateral is already in
            await payer.transfer(key.address, ETH, 1, wait=None)

        locked = []
        for key in fresh:
            channel = ChannelContract(w3, key.channel_address, node.address, key.address)
            for _ in range(100):
                if channel.is_deployed() and channel.total_deposits_alice(ETH) > 0:
                    break
                await asyncio.sleep(0.1)
            locked.append(channel.total_deposits_alice(ETH))
        assert max(locked) <= CAP
        assert locked == [11] * FRESH_KEYS  # the payment and a buffer of ten more: 11 wei each

        # a payment the cap does not allow is refused and refunded, nothing deposited
        big = await _fresh(clients)
        result = await payer.transfer(big.address, ETH, CAP + 1, wait=30)
        assert result.status == "cancelled"
        big_channel = ChannelContract(w3, big.channel_address, node.address, big.address)
        assert not big_channel.is_deployed() or big_channel.total_deposits_alice(ETH) == 0
        assert await payer.balances() == {ETH: ETHER - FRESH_KEYS}
        await payer.close()

    asyncio.run(scenario())


def test_by_default_a_dust_payment_is_refused_before_anything_is_locked(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer = await clients.connect()
        await payer.setup()
        await payer.deposit(ETH, ETHER)
        key = await _fresh(clients)
        before = await payer.channel()
        with pytest.raises(errors.AmountBelowMinimum):
            await payer.transfer(key.address, ETH, 1)
        assert await payer.channel() == before and await payer.active_transfers() == {}
        w3 = connect(clients.anvil.url)
        assert not ChannelContract(w3, key.channel_address, node.address,
                                   key.address).is_deployed()
        assert (await payer.transfer(key.address, ETH, 10**9, wait=None)).status == "pending"
        await payer.close()

    asyncio.run(scenario())
