"""A user tries to withdraw twice: it takes the node's signature on its withdraw commitment
out of the node's resolve proposal without countersigning, executes the commitment on
chain, then disputes the state in which its Withdraw transfer is still locked, hoping for
that to be refunded as well. It receives its amount once; the node's exit works.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from connext.chain.channel import ChannelContract, WithdrawCommitment
from connext.chain.contracts import Sender, connect, contract
from connext.protocol.signing import Signer
from connext.protocol.transfers import WITHDRAW
from connext.protocol.types import ETH, ResolveDetails

from ..integration.conftest import ClientFactory, NodeProcess
from .conftest import DAY
from .kit import connect_hostile, eth, exited, travel, until, withdrawn

ETHER = 10**18
PAID = ETHER // 5
WITHDRAWN = ETHER // 4
FEE = 10**15


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    return {"CONNEXT_LIMITS": json.dumps({ETH: {"withdrawalFee": str(FEE)}})}


def test_a_user_that_extracts_the_nodes_withdraw_signature_is_paid_once(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        user = await connect_hostile(clients, "user")
        payee = await clients.connect()
        await user.setup()
        await payee.setup()
        await user.deposit(ETH, ETHER)
        assert (await user.transfer(payee.address, ETH, PAID)).status == "completed"
        # the node now holds PAID on its side of the user's channel

        # 1. the user withdraws, refusing the node's resolve but keeping its signature
        user.refuse = lambda update: update.get("type") == "resolve"
        cold = Signer.random().address
        result = await user.withdraw(cold, ETH, WITHDRAWN, wait=3)
        assert result.status == "pending"
        await until(lambda: user.kept, what="the node proposes its resolve")
        node_resolve = user.kept[0]
        assert isinstance(node_resolve.details, ResolveDetails)
        (node_signature,) = WITHDRAW.decode_resolver(node_resolve.details.resolver)
        withdraw = (await user.active_transfers())[result.transfer_id]
        user_signature, *_rest, nonce, fee = WITHDRAW.decode_state(withdraw.initial_state)
        assert fee == FEE

        # 2. it executes the commitment on chain itself ...
        commitment = WithdrawCommitment(cold, ETH, WITHDRAWN - FEE, nonce)
        factory = contract(w3, "ChannelFactory", user.network.channel_factory)
        Sender(w3, user.signer.private_key).transact(factory.functions.create_channel_and_withdraw(
            node.address, user.address, commitment.as_tuple(), node_signature, user_signature))
        assert eth(w3, cold) == WITHDRAWN - FEE

        # 3. ... then disputes its latest state, where the Withdraw transfer is still locked
        latest = (await user.channel())
        assert latest.balance_of(ETH).bob == ETHER - PAID - WITHDRAWN
        user.dispute_on_chain(user.signed_states()[-1])
        travel(clients.anvil, DAY + 60)
        first = await user.exit_channel()
        assert first.paid_out == {ETH: ETHER - PAID - WITHDRAWN}
        assert list(first.waiting) == [result.transfer_id]
        travel(clients.anvil, 3600 + 60)  # the transfer's own window, then the refund path
        second = await user.exit_channel()
        assert second.done and second.paid_out == {}  # nothing comes back a second time

        # the user got its money exactly once: the withdrawal and its balance
        channel = ChannelContract(w3, user.channel_address, node.address, user.address)
        assert withdrawn(w3, user.channel_address, cold) == WITHDRAWN - FEE
        assert exited(w3, user.channel_address, user.address) == ETHER - PAID - WITHDRAWN
        # the node's exit gives it its balance and the withdrawal's fee
        await until(lambda: exited(w3, user.channel_address, node.address) == PAID + FEE, 90,
                    "the node exits with its balance and the fee")
        assert eth(w3, channel.address) == 0

        await user.close()
        await payee.close()

    asyncio.run(scenario())
