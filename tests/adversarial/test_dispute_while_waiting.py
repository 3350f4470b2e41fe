"""A user disputes its channel on chain while its own payment waits behind the node's lock
(the node's sweep holds it a moment): the waiting payment is refused once the dispute is
seen, nothing is forwarded, and the dispute settles on the last double-signed state, each
side paid its balance in it to the wei.

Were the waiting update countersigned after the dispute began, the node would hold a state
the chain's dispute does not, and route a payment out of a channel that no longer moves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from connext.chain.anvil import Anvil
from connext.chain.contracts import connect, contract
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.devstack import NatsServer
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import DAY
from .kit import HostileClient, eth, exited, node_config, start_hostile_node, travel, until

ETHER = 10**18
NODE_KEY = "0x" + "5a" * 32  # one of the nodes the test NATS lets publish


def test_a_payment_waiting_behind_the_nodes_lock_is_refused_once_its_sender_disputes(
    anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        w3 = connect(anvil.url)
        node = await start_hostile_node(
            node_config(anvil, nats.url, deployment_file, tmp_path, NODE_KEY), deployment)
        anvil.set_balance(node.address, 10**24)

        async def person(name: str, kind: type[Client] = Client) -> Any:
            signer = Signer.random()
            anvil.set_balance(signer.address, 10**22)
            return await kind.connect(
                signer, node_address=node.address, nats_url=nats.url, chain_url=anvil.url,
                database_url=f"sqlite:///{tmp_path / f'{name}.sqlite'}",
                deployment=deployment, watch_interval=1.0)

        cheat: HostileClient = await person("cheat", HostileClient)
        payee: Client = await person("payee")
        try:
            await cheat.setup()
            await payee.setup()
            await cheat.deposit(ETH, ETHER)
            assert (await cheat.transfer(payee.address, ETH, ETHER // 10)).status == (
                "completed")
            latest = cheat.signed_states()[-1]
            assert latest.nonce == (await cheat.channel()).nonce
            await until(lambda: _node_nonce(node, cheat.channel_address) == latest.nonce, 30,
                        "the node has the cheat's latest state")

            # the node's sweep holds the channel's lock; the cheat's next payment arrives
            arrived = asyncio.Event()

            async def note(sender: str, body: dict[str, Any]) -> None:
                if sender == cheat.address:
                    arrived.set()

            node.bend = note
            lock = node.engine.lock(cheat.channel_address)
            await lock.acquire()
            payment = asyncio.ensure_future(cheat.transfer(payee.address, ETH, ETHER // 4))
            try:
                await asyncio.wait_for(arrived.wait(), 30)
                await asyncio.sleep(0.2)  # the node's handler now waits for the lock
                assert not payment.done()
                # ... and the cheat disputes its latest double-signed state on chain
                cheat.dispute_on_chain(latest)
                await until(lambda: cheat.channel_address in node.engine.disputed, 30,
                            "the node's watchtower sees the dispute")
            finally:
                lock.release()

            refused: BaseException | None = None
            try:
                outcome = await asyncio.wait_for(payment, 60)
            except errors.ProtocolError as exc:
                refused = exc
            assert refused is not None, f"the waiting payment went through: {outcome}"
            assert isinstance(refused, errors.ChannelDisputed), repr(refused)
            assert _node_nonce(node, cheat.channel_address) == latest.nonce
            assert await payee.balances() == {ETH: ETHER // 10}  # nothing was forwarded
            disputes = contract(w3, "ChannelMastercopy", cheat.channel_address
                                ).events.ChannelDisputed.get_logs(from_block=0)
            assert [(d.args.disputer, d.args.nonce) for d in disputes] == [
                (cheat.address, latest.nonce)]

            travel(anvil, DAY + 60)
            cold = Signer.random().address
            progress = await cheat.exit_channel(cold)
            assert progress.done and progress.paid_out == {ETH: ETHER - ETHER // 10}
            assert eth(w3, cold) == ETHER - ETHER // 10
            await until(lambda: exited(w3, cheat.channel_address, node.address)
                        == ETHER // 10, 60, "the node takes its balance out")
        finally:
            node.bend = None
            for client in (cheat, payee):
                await client.close()
            await node.stop()

    asyncio.run(scenario())


def _node_nonce(node: Any, channel_address: str) -> int:
    stored = node.store.get_channel(channel_address)
    return -1 if stored is None else int(stored.state.nonce)
