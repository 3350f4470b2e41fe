"""Extreme timeouts are refused by both sides with a typed error: a 1-second channel
dispute window at setup, a 1-second transfer timeout at create (a dispute would have to be
answered in the same block). Whoever proposes one, the other side refuses to countersign;
whoever is configured with one, refuses it itself.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from connext.chain.anvil import Anvil
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.devstack import NatsServer
from connext.node.config import NodeConfig
from connext.protocol import errors
from connext.protocol.channel import Bounds, create_update
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import ETH

from ..integration.conftest import ClientFactory, NodeProcess
from .kit import connect_hostile, node_config, start_hostile_node

ETHER = 10**18
ANYTHING = Bounds()  # what a hostile party accepts: 1 second and up


def test_a_one_second_transfer_timeout_is_refused_by_both_sides(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        honest = await clients.connect()
        hostile = await connect_hostile(clients, "hostile", bounds=ANYTHING)
        payee = await clients.connect()
        for client in (honest, hostile, payee):
            await client.setup()
        for client in (honest, hostile):
            await client.deposit(ETH, ETHER)
        preimage = os.urandom(32)
        state = HASHLOCK.encode_state(lock_hash(preimage), 0)

        def one_second(client: Client):  # type: ignore[no-untyped-def]
            return lambda s, _t: create_update(
                s, client.address, transfer_id=os.urandom(32),
                transfer_definition=client.definition_address["Hashlock"], asset_id=ETH,
                amount=ETHER // 10, initial_state=state, transfer_timeout=1)

        # the honest client will not even sign one
        before = await honest.channel()
        with pytest.raises(errors.TimeoutOutOfBounds):
            await honest.engine.propose(honest.channel_address, one_second(honest))
        assert await honest.channel() == before

        # a client that would, is refused by the node
        before = await hostile.channel()
        with pytest.raises(errors.TimeoutOutOfBounds) as refused:
            await hostile.engine.propose(hostile.channel_address, one_second(hostile))
        assert "timeout" in refused.value.message
        assert await hostile.channel() == before
        # and its channel works on (the refused proposal does not block it)
        assert (await hostile.transfer(payee.address, ETH, ETHER // 10)).status == "completed"

        for client in (honest, hostile, payee):
            await client.close()

    asyncio.run(scenario())


def test_a_one_second_channel_dispute_window_is_refused_by_both_sides(
    anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
    tmp_path: Path,
) -> None:
    # an honest node will not run with one
    with pytest.raises(ValueError, match="CONNEXT_CHANNEL_TIMEOUT"):
        NodeConfig(private_key="0x" + "11" * 32, channel_timeout=1).check()

    async def scenario() -> None:
        # a node that would, proposes it at setup: the client refuses to countersign
        node = await start_hostile_node(
            node_config(anvil, nats.url, deployment_file, tmp_path, "0x" + "6b" * 32,
                        channel_timeout=1, bounds=ANYTHING), deployment)
        signer = Signer.random()
        user = await Client.connect(
            signer, node_address=node.address, nats_url=nats.url, chain_url=anvil.url,
            database_url=f"sqlite:///{tmp_path / 'user.sqlite'}", deployment=deployment)
        try:
            with pytest.raises(errors.TimeoutOutOfBounds) as refused:
                await user.setup()
            assert "dispute window of 1 s" in refused.value.message
            with pytest.raises(errors.ChannelNotSetUp):
                await user.channel()  # nothing was stored on either side
            assert await node.engine.channel(user.channel_address) is None
        finally:
            await user.close()
            await node.stop()

    asyncio.run(scenario())
