"""A client that lost its database restores from the node, and refuses a doctored answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connext.client import Client
from connext.devstack import NatsServer
from connext.messaging import Messaging
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.transfers import SIGNED
from connext.protocol.types import ETH

from .conftest import NODE_KEY, ClientFactory, NodeProcess
from .test_payments import ETHER, eventually


def test_client_without_its_database_restores_channel_and_balance(
    clients: ClientFactory, node: NodeProcess
) -> None:
    async def scenario() -> None:
        payer = await clients.connect()
        user_signer = clients.signer()
        user = await clients.connect(user_signer)
        await payer.setup()
        await user.setup()
        await payer.deposit(ETH, ETHER)
        await user.deposit(ETH, ETHER // 2)
        await payer.transfer(user.address, ETH, ETHER // 8)
        before = await user.channel()
        await user.close()

        fresh = await clients.connect(user_signer, f"sqlite:///{clients.tmp_path / 'new.sqlite'}")
        with pytest.raises(errors.ChannelNotSetUp):
            await fresh.channel()
        restored = await fresh.restore()
        assert restored == before
        assert await fresh.balances() == {ETH: ETHER // 2 + ETHER // 8}
        # and the restored channel keeps working
        await fresh.transfer(payer.address, ETH, ETHER // 16)
        assert await fresh.balances() == {ETH: ETHER // 2 + ETHER // 16}
        nonce = (await fresh.channel()).nonce
        await eventually(
            lambda: int(node.channel(fresh.channel_address)["state"]["nonce"]) == nonce)
        await fresh.close()
        await payer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("tamper", ["balance", "signature", "merkle_root", "dropped_transfer"])
def test_restore_refuses_a_doctored_answer_and_stores_nothing(
    clients: ClientFactory, node: NodeProcess, tamper: str, tmp_path: Any
) -> None:
    """A rogue server holding the node's key answers the restore over another NATS."""

    async def scenario() -> None:
        payer = await clients.connect()
        user_signer = clients.signer()
        user = await clients.connect(user_signer)
        await payer.setup()
        await user.setup()
        await payer.deposit(ETH, ETHER)
        await user.deposit(ETH, ETHER // 2)
        oracle = Signer.random()
        await user.conditional_transfer(payer.address, ETH, ETHER // 10, "Signed",
                                        SIGNED.encode_state(oracle.address, b"\x01" * 32,
                                                            int(time.time()) + 3600))
        genuine = node.channel(user.channel_address)
        assert len(genuine["activeTransfers"]) == 1
        await user.close()

        answer = {"state": genuine["state"], "update": genuine["latestUpdate"],
                  "transfers": genuine["activeTransfers"]}
        if tamper == "balance":
            answer["state"]["balances"][0][1] = str(int(answer["state"]["balances"][0][1]) * 2)
        elif tamper == "signature":
            update = answer["update"]
            update["aliceSignature"], update["bobSignature"] = (
                update["bobSignature"], update["aliceSignature"])
        elif tamper == "merkle_root":
            answer["state"]["merkleRoot"] = "0x" + "ab" * 32
        else:
            answer["transfers"] = []

        with NatsServer(nodes=[node.address]) as rogue_nats:
            rogue = Messaging(Signer.from_hex(NODE_KEY), rogue_nats.url)
            await rogue.connect()

            async def sync(envelope: Any) -> dict[str, Any]:
                return answer

            rogue.handle("protocol.sync", sync)
            await rogue.serve()
            victim = await Client.connect(
                user_signer, node_address=node.address, nats_url=rogue_nats.url,
                chain_url=clients.anvil.url,
                database_url=f"sqlite:///{tmp_path / 'victim.sqlite'}",
                deployment=clients.deployment,
            )
            with pytest.raises(errors.ProtocolError) as refused:
                await victim.restore()
            assert refused.value.code in {"invalid_signature", "merkle_root_mismatch"}
            with pytest.raises(errors.ChannelNotSetUp):
                await victim.channel()
            await victim.close()
            await rogue.close()
        await payer.close()

    asyncio.run(scenario())
