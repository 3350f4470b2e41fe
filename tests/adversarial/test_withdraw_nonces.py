"""A user tries to burn the withdraw commitment nonce the node will use for its own
reclaim: it asks the node to sign a commitment with a future nonce. The node signs only
commitments whose nonce the channel assigned (the channel nonce of the update creating the
Withdraw transfer), so the attempt is refused with nothing locked, and the node's reclaim
lands on chain later, as does the user's own honest withdrawal.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect
from connext.protocol import errors
from connext.protocol.channel import create_update
from connext.protocol.encoding import withdraw_commitment_digest
from connext.protocol.signing import Signer
from connext.protocol.transfers import WITHDRAW
from connext.protocol.types import ETH, ChannelState, Update

from ..integration.conftest import ClientFactory, NodeProcess
from .kit import connect_hostile, eth, until, withdrawn

ETHER = 10**18
TARGET = ETHER // 10
RECLAIM_ABOVE = ETHER // 2


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    profile = {"threshold": "0", "target": str(TARGET), "reclaimThreshold": str(RECLAIM_ABOVE)}
    return {"CONNEXT_COLLATERAL": json.dumps({ETH: profile})}


def test_a_user_cannot_spend_the_nonce_of_the_nodes_reclaim(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        user = await connect_hostile(clients, "user")
        payee = await clients.connect()
        await user.setup()
        await payee.setup()
        await user.deposit(ETH, 2 * ETHER)
        before = await user.channel()
        cold = Signer.random().address

        # 1. a Withdraw whose commitment names a nonce a few updates ahead: the nonce the
        #    node's reclaim after the next payment would take
        def burning(state: ChannelState, _transfers: object) -> Update:
            nonce = state.nonce + 3
            digest = withdraw_commitment_digest(state.network.chain_id, state.channel_address,
                                                cold, ETH, ETHER // 10, nonce)
            initial = WITHDRAW.encode_state(user.signer.sign(digest), user.address,
                                            node.address, digest, nonce, 0)
            return create_update(state, user.address, transfer_id=b"\x42" * 32,
                                 transfer_definition=user.definition_address["Withdraw"],
                                 asset_id=ETH, amount=ETHER // 10, initial_state=initial,
                                 transfer_timeout=3600, meta={"recipient": cold})

        with pytest.raises(errors.InvalidTransferState) as refused:
            await user.engine.propose(user.channel_address, burning)
        assert "nonce" in refused.value.message
        assert await user.channel() == before  # nothing locked, nothing signed

        # 2. the user pays: the node holds 0.6 ETH in its channel, above the reclaim
        #    threshold, and takes 0.5 back with a Withdraw of its own
        assert (await user.transfer(payee.address, ETH, 6 * ETHER // 10)).status == "completed"
        channel = ChannelContract(w3, user.channel_address, node.address, user.address)
        await until(lambda: withdrawn(w3, user.channel_address, node.address)
                    == 6 * ETHER // 10 - TARGET, 30, "the node's reclaim lands on chain")
        await until(lambda: int(node.channel(user.channel_address)["state"]["balances"][0][0])
                    == TARGET, 30)

        # 3. the user's own withdrawal (at the nonce the channel gives it) lands as well
        result = await user.withdraw(cold, ETH, ETHER // 4)
        assert result.status == "confirmed"
        assert eth(w3, cold) == withdrawn(w3, user.channel_address, cold) == ETHER // 4
        assert channel.total_transferred(ETH) == 6 * ETHER // 10 - TARGET + ETHER // 4
        assert await user.balances() == {ETH: 2 * ETHER - 6 * ETHER // 10 - ETHER // 4}

        await user.close()
        await payee.close()

    asyncio.run(scenario())
