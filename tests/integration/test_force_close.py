"""The node stops answering: users take their money out on chain without it.

This module runs on its own anvil chain: it moves the chain's clock by days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from connext.chain.anvil import Anvil, start_anvil
from connext.chain.channel import ChannelContract
from connext.chain.contracts import Sender, connect, contract
from connext.chain.deploy import Deployment, deploy
from connext.client import Client
from connext.protocol import errors
from connext.protocol.channel import apply_update, leaf
from connext.protocol.serialization import update_from_json
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import NODE_KEY, ClientFactory, NodeProcess
from .test_payments import ETHER, balances_are, eventually
from .test_router_safety import connect_keeping

PAYMENT_TIMEOUT = 3600  # also the dispute window of a transfer on chain
DAY = 86_400


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    chain = start_anvil()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def deployment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("force-close-chain") / "deployments.json"


@pytest.fixture(scope="module")
def deployment(anvil: Anvil, deployment_file: Path) -> Deployment:
    return deploy(anvil.url, anvil.private_keys[0], deployment_file=deployment_file)


def travel(anvil: Anvil, seconds: int) -> None:
    anvil.increase_time(seconds)
    anvil.mine()


def on_chain(client: Client) -> ChannelContract:
    state_alice, state_bob = client.node_address, client.address
    return ChannelContract(connect(client.chain_url), client.channel_address, state_alice,
                           state_bob)


def test_users_exit_on_chain_with_everything_the_channel_owes_them(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil
) -> None:
    async def scenario() -> None:
        payer = await clients.connect()
        payee = await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        paid = await payer.transfer(payee.address, ETH, ETHER // 10, timeout=PAYMENT_TIMEOUT)
        assert paid.status == "completed"

        # another payment is under way when the node dies: its recipient is offline, so it
        # waits in the node; the payer's transfer to the node is locked in its channel
        offline = await clients.connect()
        await offline.setup()
        await offline.close()
        pending = await payer.transfer(offline.address, ETH, ETHER // 20, wait=1,
                                       timeout=PAYMENT_TIMEOUT)
        assert pending.status == "pending"
        node.kill()
        # a client started while the node is down works from its own copy
        await payee.close()
        payee = await clients.connect(payee.signer, payee.database_url)
        assert await payee.balances() == {ETH: ETHER // 10}

        with pytest.raises(errors.NotDisputed):
            await payee.exit_channel()

        dispute = await payee.force_close()
        state = await payee.channel()
        assert dispute.nonce == state.nonce and dispute.transaction is not None
        assert on_chain(payee).channel_dispute().nonce == state.nonce
        with pytest.raises(errors.ChannelDisputed):  # the channel takes no more payments
            await payee.transfer(payer.address, ETH, 1)
        again = await payee.force_close()  # nothing to do twice
        assert again.transaction is None and again.nonce == dispute.nonce
        with pytest.raises(errors.DisputeWindowOpen):
            await payee.exit_channel()

        payer_dispute = await payer.force_close()
        travel(anvil, DAY + 60)  # the node's channel timeout is a day

        cold = Web3.to_checksum_address(Signer.random().address)
        w3 = connect(anvil.url)
        progress = await payee.exit_channel(cold)
        assert progress.done and progress.paid_out == {ETH: ETHER // 10}
        assert w3.eth.get_balance(cold) == ETHER // 10
        assert (await payee.exit_channel(cold)).paid_out == {}  # paid once

        # the payer gets its balance now; its locked payment once the transfer's own
        # dispute window is over (nobody can unlock it without the preimage)
        before = w3.eth.get_balance(payer.address)
        first = await payer.exit_channel()
        assert first.paid_out == {ETH: ETHER - ETHER // 10 - ETHER // 20}
        assert list(first.waiting) == list((await payer.active_transfers()).keys())
        travel(anvil, PAYMENT_TIMEOUT + 60)
        second = await payer.exit_channel()
        assert second.done and second.paid_out == {ETH: ETHER // 20}
        gained = w3.eth.get_balance(payer.address) - before
        assert ETHER - ETHER // 10 - ETHER // 100 < gained < ETHER - ETHER // 10  # minus gas
        assert payer_dispute.consensus_expiry <= anvil.block_timestamp()

        for client in (payer, payee):
            await client.close()

    asyncio.run(scenario())


def test_a_dispute_with_an_old_state_is_answered_with_the_latest(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil
) -> None:
    async def scenario() -> None:
        cheat = await clients.connect()
        payee = await clients.connect()
        await cheat.setup()
        await payee.setup()
        await cheat.deposit(ETH, ETHER)
        old = await cheat.engine.channel(cheat.channel_address)
        assert old is not None and old.latest_update.double_signed
        paid = await cheat.transfer(payee.address, ETH, ETHER // 2)
        assert paid.status == "completed"
        latest = (await cheat.channel()).nonce

        # the cheat puts the state from before its payment on chain, from its own account
        w3 = connect(anvil.url)
        sender = Sender(w3, cheat.signer.private_key)
        factory = contract(w3, "ChannelFactory", cheat.network.channel_factory)
        sender.transact(factory.functions.create_channel(cheat.node_address, cheat.address))
        channel = on_chain(cheat)
        update = old.latest_update
        assert update.alice_signature is not None and update.bob_signature is not None
        sender.transact(channel.dispute_channel(old.state, update.alice_signature,
                                                update.bob_signature))
        assert channel.channel_dispute().nonce == old.state.nonce < latest

        await eventually(lambda: channel.channel_dispute().nonce == latest, timeout=30)
        await eventually(lambda: "answered the dispute" in node.output())  # operators see it

        # the node takes no more updates in the disputed channel, also after a restart
        node.stop()
        node.start()
        with pytest.raises(errors.ChannelDisputed) as refused:
            await cheat.transfer(payee.address, ETH, 1)
        assert refused.value.code == "channel_disputed"
        assert (await cheat.channel()).nonce == latest

        travel(anvil, DAY + 60)
        node_before = w3.eth.get_balance(cheat.node_address)
        progress = await cheat.exit_channel()
        assert progress.paid_out == {ETH: ETHER - ETHER // 2}
        # the node takes its share out by itself: nothing stays stranded in the contract
        await eventually(lambda: w3.eth.get_balance(channel.address) == 0, timeout=60)
        assert channel.exitable(ETH, cheat.node_address) == 0
        gained = w3.eth.get_balance(cheat.node_address) - node_before
        assert ETHER // 2 - ETHER // 100 < gained <= ETHER // 2  # less the gas it paid
        for client in (cheat, payee):
            await client.close()

    asyncio.run(scenario())


def test_the_clients_watchtower_answers_a_stale_dispute_by_the_node(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil
) -> None:
    async def scenario() -> None:
        user = await clients.connect()
        payee = await clients.connect()
        await user.setup()
        await payee.setup()
        await user.deposit(ETH, ETHER)
        await payee.deposit(ETH, ETHER)
        # the payee's channel: its state before it was paid is better for the node
        old = await payee.engine.channel(payee.channel_address)
        assert old is not None
        assert (await user.transfer(payee.address, ETH, ETHER // 2)).status == "completed"
        # the payee commits its claim when the node's answer reaches it, a moment after the
        # node settled the payer: its latest state is the one with the payment in it
        await eventually(lambda: balances_are(payee, {ETH: ETHER + ETHER // 2}))
        latest = (await payee.channel()).nonce
        events: list[dict[str, object]] = []
        payee.on("channel.dispute_answered", events.append)

        # a node gone bad disputes the old state with its own key, then disappears
        node.kill()
        w3 = connect(anvil.url)
        crook = Sender(w3, NODE_KEY)
        factory = contract(w3, "ChannelFactory", payee.network.channel_factory)
        channel = on_chain(payee)
        if not channel.is_deployed():
            crook.transact(factory.functions.create_channel(payee.node_address,
                                                            payee.address))
        update = old.latest_update
        assert update.alice_signature is not None and update.bob_signature is not None
        crook.transact(channel.dispute_channel(old.state, update.alice_signature,
                                               update.bob_signature))
        assert channel.channel_dispute().nonce == old.state.nonce < latest

        await eventually(lambda: channel.channel_dispute().nonce == latest, timeout=30)
        await eventually(lambda: len(events) == 1)
        assert events[0]["staleNonce"] == old.state.nonce and events[0]["nonce"] == latest
        with pytest.raises(errors.ChannelDisputed):
            await payee.transfer(user.address, ETH, 1)

        travel(anvil, DAY + 60)
        progress = await payee.exit_channel()
        assert progress.paid_out == {ETH: ETHER + ETHER // 2}
        for client in (user, payee):
            await client.close()

    asyncio.run(scenario())


def test_the_node_exits_when_the_recipient_disputes_with_the_forward_it_kept(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil
) -> None:
    """The recipient refuses the node's forward but keeps it, countersigns it alone and
    disputes with it: the chain holds a state the node only has as its own proposal.
    The node still takes out everything that is its own."""
    async def scenario() -> None:
        sender = await clients.connect()
        recipient = await connect_keeping(clients, refusals=-1)
        await sender.setup()
        await recipient.setup()
        await sender.deposit(ETH, ETHER)
        pending = await sender.transfer(recipient.address, ETH, ETHER // 10, wait=2,
                                        timeout=PAYMENT_TIMEOUT)
        assert pending.status == "pending"
        await eventually(lambda: len(recipient.kept) >= 1)

        # the recipient completes the node's signed forward by itself and disputes with it
        forward = update_from_json(recipient.kept[0])
        stored = await recipient.engine.channel(recipient.channel_address)
        assert stored is not None and forward.alice_signature is not None
        applied = apply_update(stored.state, stored.transfers, forward, recipient.rules())
        w3 = connect(anvil.url)
        channel = on_chain(recipient)
        Sender(w3, recipient.signer.private_key).transact(channel.dispute_channel(
            applied.state, forward.alice_signature, recipient.signer.sign(applied.digest)))
        assert channel.channel_dispute().nonce == stored.state.nonce + 1

        node_address = recipient.node_address
        before = w3.eth.get_balance(node_address)
        travel(anvil, DAY + 60)  # the channel's window ends; the forward's lock expired
        (kept,) = [t for t in applied.transfers.values() if t.initiator == node_address]
        # the node takes its balance out and proves the forward on chain
        await eventually(lambda: channel.transfer_dispute(leaf(kept)).expiry > 0
                         and channel.exitable(ETH, node_address) == 0
                         and w3.eth.get_balance(channel.address) == kept.balance.amount[0],
                         timeout=60)
        until = channel.transfer_dispute(leaf(kept)).expiry
        travel(anvil, until - anvil.block_timestamp() + 60)  # the forward's window ends
        # the node gets back its collateral, the forward included: the contract is empty
        await eventually(lambda: w3.eth.get_balance(channel.address) == 0, timeout=60)
        assert w3.eth.get_balance(node_address) > before
        for client in (sender, recipient):
            await client.close()

    asyncio.run(scenario())
