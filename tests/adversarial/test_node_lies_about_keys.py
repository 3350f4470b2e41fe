"""A node that answers a sender's public-key request with its own key, to read the
preimage the sender encrypts for the recipient (and claim the sender's payment without
paying the recipient): the sender refuses before anything is locked. An honest key is
asked for once per recipient, then kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from connext.chain.anvil import Anvil
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.devstack import NatsServer
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from ..integration.test_payments import balances_are
from .kit import HostileNode, node_config, until

NODE_KEY = "0x" + "7c" * 32
ETHER = 10**18


class KeySwappingNode(HostileNode):
    lie = True
    asked: list[str]

    def _handlers(self) -> dict[str, Any]:
        handlers = super()._handlers()
        honest = handlers["party.public_key"]
        self.asked = []

        async def public_key(sender: str, body: dict[str, Any]) -> dict[str, Any]:
            self.asked.append(str(body.get("address")))
            if self.lie:
                return {"address": body.get("address"),
                        "publicKey": "0x" + self.signer.public_key.hex()}
            answer: dict[str, Any] = await honest(sender, body)
            return answer

        handlers["party.public_key"] = public_key
        return handlers


def test_a_node_handing_out_its_own_key_as_the_recipients_is_refused(
    anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        node = KeySwappingNode(
            node_config(anvil, nats.url, deployment_file, tmp_path, NODE_KEY), deployment)
        await node.start()
        anvil.set_balance(node.address, 10**24)
        parties: list[Client] = []
        for name in ("sender", "recipient"):
            signer = Signer.random()
            anvil.set_balance(signer.address, 10**22)
            parties.append(await Client.connect(
                signer, node_address=node.address, nats_url=nats.url, chain_url=anvil.url,
                database_url=f"sqlite:///{tmp_path / f'{name}.sqlite'}",
                deployment=deployment))
        sender, recipient = parties
        try:
            await sender.setup()
            await recipient.setup()
            await sender.deposit(ETH, ETHER)
            with pytest.raises(errors.InvalidSignature, match="not the recipient's"):
                await sender.transfer(recipient.address, ETH, ETHER // 10)
            assert await sender.balances() == {ETH: ETHER}  # nothing was locked
            assert await sender.active_transfers() == {}

            node.lie = False  # an honest key is checked once, then kept
            for _ in range(3):
                result = await sender.transfer(recipient.address, ETH, ETHER // 10)
                assert result.status == "completed"
            assert node.asked == [recipient.address, recipient.address]
            await until(lambda: balances_are(recipient, {ETH: 3 * ETHER // 10}), 10,
                        "the recipient commits its third claim")
        finally:
            await asyncio.gather(*(p.close() for p in parties))
            await node.stop()

    asyncio.run(scenario())
