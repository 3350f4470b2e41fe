"""Two users pay each other through a real node over real NATS on a real anvil chain."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from web3 import Web3

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect, contract
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ADMIN_TOKEN, ClientFactory, NodeProcess

ETHER = 10**18


def http_json(port: int, path: str) -> Any:
    """A GET of the node's HTTP API as its admin (channel routes need a party or the admin)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def balances_are(client: Client, expected: dict[str, int]) -> bool:
    """For `eventually`/`until`: the client's channel balances are `expected`."""
    return await client.balances() == expected


async def eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("node_database_url", ["sqlite", "postgresql"], indirect=True)
def test_two_users_deposit_pay_and_withdraw(
    clients: ClientFactory, node: NodeProcess, deployment: Deployment
) -> None:
    token = deployment.test_token
    assert token is not None

    async def scenario() -> None:
        alice = await clients.connect()
        bob = await clients.connect()
        received: list[dict[str, Any]] = []
        bob.on("transfer.received", received.append)
        updates: list[dict[str, Any]] = []
        bob.on("channel.updated", updates.append)
        try:
            await alice.setup()
            await bob.setup()
            w3 = connect(clients.anvil.url)
            channel = ChannelContract(w3, alice.channel_address, node.address, alice.address)
            assert not channel.is_deployed()

            # bob's side deposits are plain transfers to the (undeployed) channel address
            await alice.deposit(ETH, 2 * ETHER)
            await alice.deposit(token, 500 * ETHER)
            assert await alice.balances() == {ETH: 2 * ETHER, token: 500 * ETHER}
            assert not channel.is_deployed(), "a user deposit needs no deployment"

            result = await alice.transfer(bob.address, ETH, ETHER // 4)
            assert result.status == "completed"
            result = await alice.transfer(bob.address, token, 7 * ETHER)
            assert result.status == "completed"

            await eventually(lambda: len(received) == 2)
            assert {(r["assetId"], r["amount"]) for r in received} == {
                (ETH, str(ETHER // 4)), (token, str(7 * ETHER))}
            assert received[0]["from"] == alice.address
            assert await bob.balances() == {ETH: ETHER // 4, token: 7 * ETHER}
            # each new state's event says what it leaves bob (the wallet shows it at once)
            latest = max(updates, key=lambda u: u["nonce"])
            assert latest["nonce"] == (await bob.channel()).nonce
            assert latest["balances"] == {ETH: str(ETHER // 4), token: str(7 * ETHER)}
            assert await alice.balances() == {ETH: 2 * ETHER - ETHER // 4,
                                              token: 493 * ETHER}

            # the node's books balance: what it holds for the payments equals what it paid
            # (the node stores the last resolve right after its counterparty does)
            await eventually(lambda: not any(
                http_json(node.http_port, f"/channels/{c.channel_address}")["activeTransfers"]
                for c in (alice, bob)))
            bob_channel = http_json(node.http_port, f"/channels/{bob.channel_address}")
            alice_channel = http_json(node.http_port, f"/channels/{alice.channel_address}")
            assert alice_channel["activeTransfers"] == [] == bob_channel["activeTransfers"]
            alice_state = alice_channel["state"]
            node_received = {a: int(b[0]) for a, b in zip(alice_state["assetIds"],
                                                          alice_state["balances"], strict=True)}
            assert node_received == {ETH: ETHER // 4, token: 7 * ETHER}
            bob_state = bob_channel["state"]
            for _asset, (node_side, user_side), deposited in zip(
                bob_state["assetIds"], bob_state["balances"], bob_state["processedDepositsA"],
                strict=True,
            ):
                assert int(node_side) + int(user_side) == int(deposited)

            # bob cashes out to a fresh address; the node deploys the channel and pays gas
            cash_out = Signer.random().address
            bob_onchain = ChannelContract(w3, bob.channel_address, node.address, bob.address)
            before = w3.eth.get_balance(cash_out)
            withdrawal = await bob.withdraw(cash_out, ETH, ETHER // 5)
            assert withdrawal.status == "confirmed", withdrawal
            assert w3.eth.get_balance(cash_out) - before == ETHER // 5
            receipt = w3.eth.get_transaction_receipt(withdrawal.transaction_hash)
            assert receipt["status"] == 1
            assert bob_onchain.is_deployed()
            assert await bob.balances() == {ETH: ETHER // 4 - ETHER // 5, token: 7 * ETHER}
            token_contract = contract(w3, "TestToken", token)
            token_out = Signer.random().address
            withdrawal = await bob.withdraw(token_out, token, 3 * ETHER)
            assert withdrawal.status == "confirmed"
            assert token_contract.functions.balanceOf(token_out).call() == 3 * ETHER
            assert not channel.is_deployed(), "alice's channel never needed deploying"
            assert Web3.is_checksum_address(bob.channel_address)
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(scenario())
