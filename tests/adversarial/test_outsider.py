"""An outsider can neither read a channel's signed state from the node nor end the channel
with one it got hold of anyway (a leaked backup, a sniffed message): only the channel's
parties, or an address one of them authorised by signature, may dispute it.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from web3.exceptions import ContractLogicError

from connext.chain.anvil import Anvil
from connext.chain.channel import ChannelContract
from connext.chain.contracts import Sender, connect, contract
from connext.engine.engine import UPDATE_METHOD
from connext.messaging import Messaging, RemoteError, subject
from connext.protocol import errors
from connext.protocol.encoding import dispute_authorization_digest
from connext.protocol.serialization import update_to_json
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from ..integration.test_node_http import signed

ETHER = 10**18


def _status(node: NodeProcess, path: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_an_outsider_can_neither_read_a_signed_state_from_the_node_nor_dispute_it(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil,
) -> None:
    async def scenario() -> None:
        w3 = connect(anvil.url)
        user, payee = await clients.connect(), await clients.connect()
        await user.setup()
        await payee.setup()
        await user.deposit(ETH, ETHER)
        assert (await user.transfer(payee.address, ETH, ETHER // 10)).status == "completed"
        outsider = Signer.random()
        anvil.set_balance(outsider.address, 10**20)
        chain_id, path = clients.deployment.chain_id, f"/channels/{user.channel_address}"

        # the node shows the signed state to its parties only
        assert _status(node, path, {}) == 401
        assert _status(node, path, signed(outsider, chain_id, node.address, path)) == 403
        assert _status(node, path, signed(user.signer, chain_id, node.address, path)) == 200

        # the state leaks anyway; the outsider tries to end the channel with it
        stored = await user.engine.channel(user.channel_address)
        assert stored is not None
        update = stored.latest_update
        assert update.alice_signature is not None and update.bob_signature is not None
        channel = ChannelContract(w3, user.channel_address, node.address, user.address)
        crook = Sender(w3, outsider.private_key)
        factory = contract(w3, "ChannelFactory", clients.deployment.channel_factory)
        crook.transact(factory.functions.create_channel(node.address, user.address))  # anyone
        with pytest.raises(ContractLogicError, match="not a party or authorised"):
            crook.transact(channel.dispute_channel(stored.state, update.alice_signature,
                                                   update.bob_signature))
        # an authorisation it signed itself, or one made out to someone else, does not help
        for signer, disputer in ((outsider, outsider.address), (user.signer, payee.address)):
            authorization = signer.sign(dispute_authorization_digest(
                chain_id, user.channel_address, disputer))
            with pytest.raises(ContractLogicError, match="not a party or authorised"):
                crook.transact(channel.dispute_channel(
                    stored.state, update.alice_signature, update.bob_signature, authorization))
        assert channel.channel_dispute().nonce == 0

        # the channel lives on
        assert (await user.transfer(payee.address, ETH, ETHER // 10)).status == "completed"
        assert await user.balances() == {ETH: ETHER - 2 * ETHER // 10}
        await user.close()
        await payee.close()

    asyncio.run(scenario())


def test_an_outsider_cannot_pass_a_sniffed_update_off_as_its_sender(
    clients: ClientFactory, node: NodeProcess, anvil: Anvil,
) -> None:
    """Channel updates go without envelope signatures (the update is signed by its
    initiator): an outsider with a sniffed proposal tries to get the node to take it, or
    to hand out the countersigned copy, and to send as the user. Nothing moves, and the
    user's cash-out reaches its cold address to the wei."""

    async def scenario() -> None:
        w3 = connect(anvil.url)
        user, payee = await clients.connect(), await clients.connect()
        await user.setup()
        await payee.setup()
        await user.deposit(ETH, ETHER)
        outsider = Messaging(Signer.random(), clients.nats.url)
        await outsider.connect()
        try:
            # a proposal of the user's as it went over the wire: the user's signature only
            # (the node is alice)
            stored = await user.engine.channel(user.channel_address)
            assert stored is not None and stored.latest_update is not None
            sniffed = replace(stored.latest_update, alice_signature=None)
            node_nonce = node.channel(user.channel_address)["state"]["nonce"]

            # under its own name: not the update's initiator
            with pytest.raises(RemoteError) as refused:
                await outsider.request(node.address, UPDATE_METHOD,
                                       {"update": update_to_json(sniffed)},
                                       check_result=lambda result: None)
            assert refused.value.code == errors.InvalidUpdate.code
            # in the user's name: the NATS server lets nobody publish as someone else
            assert not await outsider.may_publish(
                subject(node.address, user.address, UPDATE_METHOD))
            assert await outsider.may_publish(
                subject(node.address, outsider.address, UPDATE_METHOD))
            assert node.channel(user.channel_address)["state"]["nonce"] == node_nonce
        finally:
            await outsider.close()

        assert (await user.transfer(payee.address, ETH, ETHER // 10)).status == "completed"
        cold = Signer.random().address
        result = await user.withdraw(cold, ETH, ETHER // 2)
        assert result.status == "confirmed", result
        assert w3.eth.get_balance(cold) == ETHER // 2  # type: ignore[arg-type]
        assert await user.balances() == {ETH: ETHER - ETHER // 10 - ETHER // 2}
        await user.close()
        await payee.close()

    asyncio.run(scenario())
