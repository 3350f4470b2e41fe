"""A user tries to make the node lock or churn collateral: many payments just above the
collateralize threshold to an accomplice (each one leaving the node's balance below it),
tiny payments that leave it below the threshold too, and a profile of its own choosing set
through the admin API without the token.

The node tops up by a buffer of ten such payments (at most the target), so the payments
cause a few deposits, not one each, and payments below a tenth of the threshold start no
top-up at all; it never holds more than the cap in the accomplice's channel; the forged
profile is refused and a payment above the cap still is; an honest user's payment in the
middle of it all is paid out to the wei; and the node's own funds (on chain plus its side
of every channel) change by exactly the gas it paid.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from web3 import Web3

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.client import Client
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from ..integration.test_collateral_management import (
    admin,
    collateral_deposits,
    node_transactions,
)
from .kit import eth, withdrawn

ETHER = 10**18
THRESHOLD = ETHER // 100  # 0.01
TARGET = ETHER // 5  # 0.2
CAP = 3 * ETHER // 10  # 0.3
JUST_ABOVE = THRESHOLD + THRESHOLD // 10  # 0.011: leaves the node below the threshold
TINY = THRESHOLD // 20  # below a tenth of the threshold
PAYMENTS = 20


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    profile = {"threshold": str(THRESHOLD), "target": str(TARGET),
               "reclaimThreshold": str(ETHER), "cap": str(CAP)}
    return {"CONNEXT_COLLATERAL": json.dumps({ETH: profile})}


def node_sides(node: NodeProcess, *clients: Client) -> int:
    """The node's ETH on its side of these channels (0 in a channel without ETH yet)."""
    total = 0
    for client in clients:
        state = node.channel(client.channel_address)["state"]
        for asset, balance in zip(state["assetIds"], state["balances"], strict=True):
            total += int(balance[0]) if asset == ETH else 0
    return total


def gas_paid(w3: Web3, sender: str, from_block: int) -> int:
    return sum(int(r["gasUsed"]) * int(r["effectiveGasPrice"])
               for _tx, r in node_transactions(w3, sender, from_block))


def test_payments_just_above_the_threshold_and_a_forged_profile_cannot_churn_collateral(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        factory = clients.deployment.network.channel_factory
        start = int(w3.eth.block_number) + 1
        node_before = eth(w3, node.address)
        everyone = [await clients.connect() for _ in range(6)]
        attacker, accomplice, other, small, honest_payer, honest_payee = everyone
        for client in everyone:
            await client.setup()
        await attacker.deposit(ETH, ETHER)
        await honest_payer.deposit(ETH, ETHER // 10)

        # the attack: twenty payments, each just above the threshold, and an honest
        # payment in the middle of them
        attack = [attacker.transfer(accomplice.address, ETH, JUST_ABOVE, wait=60)
                  for _ in range(PAYMENTS)]
        honest = honest_payer.transfer(honest_payee.address, ETH, ETHER // 20, wait=60)
        results = await asyncio.gather(*attack, honest)
        assert [r.status for r in results] == ["completed"] * (PAYMENTS + 1)
        await asyncio.sleep(1)  # a top-up the last payments started has landed

        deposits = collateral_deposits(w3, node, factory, accomplice.address, start)
        # a buffer of ten payments each time: the first deposit and at most two top-ups
        volume = PAYMENTS * JUST_ABOVE
        assert 1 <= len(deposits) <= volume // (10 * JUST_ABOVE - THRESHOLD) + 1, deposits
        # (whether the second deposit is a background top-up or a just-in-time one depends
        # on which of two concurrent payments takes the channel's collateral lock first)
        accomplice_channel = ChannelContract(w3, accomplice.channel_address, node.address,
                                             accomplice.address)
        assert accomplice_channel.total_deposits_alice(ETH) == sum(deposits)
        assert sum(deposits) - volume == node_sides(node, accomplice) <= CAP
        assert await accomplice.balances() == {ETH: volume}

        # payments below a tenth of the threshold never start a top-up: each leaves the
        # node below the threshold, and the node keeps only what the just-in-time rule
        # gives (the payment and ten more like it)
        tiny_start = int(w3.eth.block_number) + 1
        for _ in range(10):
            paid = await attacker.transfer(small.address, ETH, TINY, wait=60)
            assert paid.status == "completed"
        await asyncio.sleep(1)  # time for a top-up, were one started
        assert collateral_deposits(w3, node, factory, small.address, tiny_start) == [11 * TINY]
        assert node_sides(node, small) == TINY

        # a forged profile: no token, wrong tokens; nothing changes
        huge = {"threshold": "0", "target": str(10**24), "reclaimThreshold": str(10**24),
                "cap": str(10**24)}
        path = f"/admin/profiles/{other.channel_address}/{ETH}"
        for token in (None, "", "guess", "Bearer test-admin-token"):
            status, _ = admin(node, "PUT", path, huge, token=token)
            assert status == 401
        before_refusal = int(w3.eth.block_number) + 1
        refused = await attacker.transfer(other.address, ETH, CAP + 1, wait=30)
        assert refused.status == "cancelled"  # the cap still holds: nothing deposited
        assert collateral_deposits(w3, node, factory, other.address, before_refusal) == []

        # the honest payee is paid out on chain to the wei
        assert await honest_payee.balances() == {ETH: ETHER // 20}
        paid_out = await honest_payee.withdraw(honest_payee.address, ETH, ETHER // 20)
        assert paid_out.status == "confirmed"
        assert withdrawn(w3, honest_payee.channel_address, honest_payee.address) == (
            ETHER // 20)
        assert await honest_payer.balances() == {ETH: ETHER // 10 - ETHER // 20}
        assert await attacker.balances() == {ETH: ETHER - volume - 10 * TINY}

        # the node's funds: what left its account is on its side of the channels, less gas
        assert eth(w3, node.address) + node_sides(node, *everyone) == (
            node_before - gas_paid(w3, node.address, start))
        for client in everyone:
            await client.close()

    asyncio.run(scenario())
