"""Deposits sent straight to a channel address are noticed and reconciled by the node,
including those made while the node was down (the watcher resumes from its last block),
and one that a withdrawal of the same amount in the same block hides from the channel's
balance (the watcher reads totals only where the balance moved, or a withdrawal says so)."""

from __future__ import annotations

import asyncio
from typing import Any

from eth_account import Account

from connext.chain.contracts import Sender, connect, contract
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually


def test_node_reconciles_plain_deposits_and_catches_up_after_a_restart(
    clients: ClientFactory, node: NodeProcess
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> None:
        user = await clients.connect()
        await user.setup()
        reconciled: list[dict[str, Any]] = []
        user.on("deposit.reconciled", reconciled.append)
        w3 = connect(clients.anvil.url)
        friend = Sender(w3, "0x" + clients.signer().private_key.hex())  # has ETH and tokens

        # someone else pays into the channel with a plain ETH transfer
        await asyncio.to_thread(friend.send_eth, user.channel_address, ETHER // 3)

        async def balance(asset: str) -> int:
            return (await user.balances()).get(asset, 0)

        async def has(asset: str, amount: int) -> bool:
            return await balance(asset) == amount

        await eventually(lambda: has(ETH, ETHER // 3))

        # a token deposit while the node is down is picked up when it comes back
        node.stop()
        tokens = contract(w3, "TestToken", token)
        await asyncio.to_thread(
            friend.transact, tokens.functions.transfer(user.channel_address, 5 * ETHER))
        node.start()
        await user.sync()
        await eventually(lambda: has(token, 5 * ETHER), timeout=30)
        # the event is emitted right after the commit that updates the balance
        await eventually(lambda: {r["assetId"] for r in reconciled} >= {ETH, token})
        await user.close()

    asyncio.run(scenario())


def test_a_deposit_hidden_by_a_withdrawal_of_the_same_amount_is_reconciled(
    clients: ClientFactory, node: NodeProcess
) -> None:
    """The node's withdrawal of X and someone's plain deposit of X land in one block: the
    channel's ETH balance is what it was at the watcher's last scan. The deposit must still
    be credited to the user, to the wei."""
    anvil = clients.anvil

    async def scenario() -> None:
        user = await clients.connect()
        await user.setup()
        reconciled: list[dict[str, Any]] = []
        user.on("deposit.reconciled", reconciled.append)
        w3 = connect(anvil.url)
        friend = Account.from_key(clients.signer().private_key)
        funder = Sender(w3, friend.key)

        async def balance() -> int:
            return (await user.balances()).get(ETH, 0)

        async def has(amount: int) -> bool:
            return await balance() == amount

        await asyncio.to_thread(funder.send_eth, user.channel_address, ETHER)
        await eventually(lambda: has(ETHER))
        assert await user.withdrawal_fee(ETH) == 0  # X leaves the channel on chain
        amount = ETHER // 4
        cold = Signer.random().address
        anvil.rpc("evm_setAutomine", [False])
        try:
            await user.withdraw(cold, ETH, amount, wait=None)

            def pending() -> int:
                return int(anvil.rpc("txpool_status")["pending"], 16)

            await eventually(lambda: pending() >= 1)  # the node's withdrawal, not mined
            tx = {"to": user.channel_address, "value": amount, "gas": 100_000,
                  "nonce": w3.eth.get_transaction_count(friend.address, "pending"),
                  "chainId": w3.eth.chain_id, "maxFeePerGas": 100 * 10**9,
                  "maxPriorityFeePerGas": 10**9}
            w3.eth.send_raw_transaction(friend.sign_transaction(tx).raw_transaction)
            assert pending() == 2
            anvil.mine()  # both in one block
        finally:
            anvil.rpc("evm_setAutomine", [True])
        assert w3.eth.get_balance(cold) == amount
        assert w3.eth.get_balance(user.channel_address) == ETHER  # as at the last scan
        await eventually(lambda: any(r["amount"] == str(amount) for r in reconciled))
        await eventually(lambda: has(ETHER))  # ETHER - X withdrawn + X deposited
        await user.close()

    asyncio.run(scenario())
