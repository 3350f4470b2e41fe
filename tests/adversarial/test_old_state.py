"""A user disputes an old state of its own, one in which it had more; the node's watchtower
answers with the latest double-signed state within the window, and the user's payout is its
latest balance to the wei (the node gets its own latest balance too).
"""

from __future__ import annotations

import asyncio

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect, contract
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from .conftest import DAY
from .kit import connect_hostile, eth, exited, travel, until

ETHER = 10**18


def test_a_user_disputing_an_old_state_is_answered_and_paid_its_latest_balance(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        cheat = await connect_hostile(clients, "cheat")
        payee = await clients.connect()
        await cheat.setup()
        await payee.setup()
        await cheat.deposit(ETH, ETHER)
        old = cheat.signed_states()[-1]  # holds 1 ETH here
        for _ in range(3):
            assert (await cheat.transfer(payee.address, ETH, ETHER // 10)).status == "completed"
        latest = await cheat.channel()
        assert latest.balance_of(ETH).bob == ETHER - 3 * ETHER // 10

        cheat.dispute_on_chain(old)
        channel = ChannelContract(w3, cheat.channel_address, node.address, cheat.address)
        # the cheat's dispute of the old state landed (the node may answer it at once)
        disputes = contract(w3, "ChannelMastercopy", cheat.channel_address
                            ).events.ChannelDisputed.get_logs(from_block=0)
        assert (disputes[0].args.disputer, disputes[0].args.nonce) == (cheat.address, old.nonce)
        assert old.nonce < latest.nonce
        await until(lambda: channel.channel_dispute().nonce == latest.nonce, 30,
                    "the node answers with the latest state")

        travel(clients.anvil, DAY + 60)
        cold = Signer.random().address
        progress = await cheat.exit_channel(cold)
        assert progress.done and progress.paid_out == {ETH: ETHER - 3 * ETHER // 10}
        assert eth(w3, cold) == ETHER - 3 * ETHER // 10
        await until(lambda: exited(w3, cheat.channel_address, node.address)
                    == latest.balance_of(ETH).alice == 3 * ETHER // 10, 60,
                    "the node takes its latest balance out")
        await cheat.close()
        await payee.close()

    asyncio.run(scenario())
