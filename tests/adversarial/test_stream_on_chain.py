"""The payer of a stream disappears and the node goes silent too: the recipient still gets
its highest voucher's amount, on chain. Before the stream expires its client registers the
voucher's evidence (nobody settled it); a day later it disputes and takes the money out."""

from __future__ import annotations

import asyncio

from connext.chain.contracts import connect, contract
from connext.protocol.encoding import voucher_digest
from connext.protocol.identifiers import forward_transfer_id
from connext.protocol.signing import Signer
from connext.protocol.transfers.base import evidence_hash, evidence_of
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from .conftest import DAY
from .kit import connect_hostile, eth, travel, until

ETHER = 10**18
PRICE = 10**13


def test_payer_and_node_gone_the_recipient_is_paid_its_highest_voucher_on_chain(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer = await clients.connect()
        payee = await connect_hostile(clients, "payee", reveal_margin=8, watch_interval=1.0)
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        stream = await payer.streams.open(payee.address, ETH, ETHER // 10, timeout=30)

        async def arrived() -> bool:
            return forward_transfer_id(stream.routing_id) in await payee.active_transfers()

        await until(arrived, 30, "the stream reaches the payee")
        for _ in range(25):
            await stream.pay(PRICE)
        await payer.close()  # the payer is gone
        node.kill()  # and the node too: nobody settles the stream

        best = await payee.streams.highest(stream.routing_id)
        assert best is not None and best.amount == 25 * PRICE
        digest = voucher_digest(payee.network.chain_id, payee.definition_address["Stream"],
                                stream.routing_id, best.amount)
        registry = contract(w3, "SecretRegistry", clients.deployment.secret_registry)
        key = evidence_hash(evidence_of(digest, best.signature))
        await until(lambda: registry.functions.registered_at(key).call() != 0, 60,
                    "the payee registers its highest voucher before the stream expires")

        await payee.force_close()
        travel(clients.anvil, DAY + 60)  # long after the stream expired
        cold = Signer.random().address
        progress = await payee.exit_channel(cold)
        assert progress.done and progress.paid_out == {ETH: 25 * PRICE}
        assert eth(w3, cold) == 25 * PRICE
        await payee.close()

    asyncio.run(scenario())
