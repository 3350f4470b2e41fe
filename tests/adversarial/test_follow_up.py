"""A recipient answers the node's forward with a valid countersignature and, attached to
it, a follow-up that steals: a deposit it never made. The node takes the countersignature
(the forward is in) and refuses the follow-up with the same checks as any update a user
sends: nothing of it counts. The recipient's client then claims the payment the usual way,
and on chain the recipient is paid what it was sent, to the wei, not a wei of the deposit
it claimed.
"""

from __future__ import annotations

import asyncio

from connext.chain.contracts import connect
from connext.node.routing import forward_transfer_id
from connext.protocol.channel import Applied, deposit_update
from connext.protocol.signing import Signer
from connext.protocol.types import ETH, Update, UpdateType

from ..integration.conftest import ClientFactory, NodeProcess
from .conftest import DAY
from .kit import connect_hostile, eth, travel, until

ETHER = 10**18
AMOUNT = ETHER // 10


def test_a_follow_up_claiming_a_deposit_never_made_is_refused_and_pays_nothing(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        sender = await clients.connect()
        cheat = await connect_hostile(clients, "cheat")
        await sender.setup()
        await cheat.setup()
        await sender.deposit(ETH, ETHER)
        attached: list[Update] = []

        def steal(update: Update, applied: Applied) -> Update | None:
            """On the forward's create: claim a deposit of 1 ETH of our own."""
            if update.type is not UpdateType.CREATE or attached:
                return None
            state = applied.state
            index = state.asset_ids.index(ETH)
            theft = deposit_update(state, cheat.address, ETH,
                                   state.processed_deposits_a[index], ETHER)
            attached.append(theft)
            return theft

        cheat.follow_up_instead = steal
        payment = await sender.transfer(cheat.address, ETH, AMOUNT, wait=None)
        forward_id = forward_transfer_id(payment.routing_id)

        # the forward is in, and the theft went out with its countersignature ...
        async def forwarded() -> bool:
            return forward_id in await cheat.active_transfers()

        await until(forwarded, 30, "the node forwards the payment")
        assert attached
        # ... the node refused it then, and once more when the cheat's recovery re-sent it
        # (a refusal clears it): the deposit never made counts nowhere
        async def refused() -> bool:
            stored = await cheat.engine.channel(cheat.channel_address)
            return stored is not None and stored.pending_update is None

        await until(refused, 30, "the node refuses the re-sent theft")
        assert all(u.type is not UpdateType.DEPOSIT or u.nonce < attached[0].nonce
                   for u in cheat.signed_states())
        # the cheat's recovery claims the payment the honest way then (its client claims
        # what pays it and is not claimed yet): both hops complete
        async def sender_settled() -> bool:
            return await sender.active_transfers() == {}

        await until(sender_settled, 30, "the node collects from the sender")
        assert await sender.balances() == {ETH: ETHER - AMOUNT}
        assert await cheat.balances() == {ETH: AMOUNT}

        # on chain, the cheat gets what it was paid, to the wei
        await cheat.force_close()
        travel(clients.anvil, DAY + 60)
        cold = Signer.random().address
        progress = await cheat.exit_channel(cold)
        assert progress.done and progress.paid_out == {ETH: AMOUNT}
        assert eth(w3, cold) == AMOUNT
        await sender.close()
        await cheat.close()

    asyncio.run(scenario())
