"""What the node does on chain: collateral deposits and withdrawals it pays the gas for.

Both go through the channel factory, which deploys the channel in the same transaction
when it does not exist yet. Transactions are sent by the transaction manager, which owns
the node account's nonce; this module only builds the calls.

Token deposits need an allowance for the factory. Approving each deposit's amount races:
two concurrent top-ups approve 5 and 3, and the deposit of 5 finds an allowance of 3. So
the node approves the factory (our own contract) for the maximum once per token, under a
lock per token, and deposits never touch the allowance again.
"""

from __future__ import annotations

import asyncio

from web3 import Web3
from web3.types import TxReceipt

from ..chain.channel import ChannelContract, WithdrawCommitment
from ..chain.contracts import contract, encode_call
from ..chain.txmanager import TransactionManager
from ..protocol.types import ETH, Address, ChannelState

MAX_ALLOWANCE = 2**256 - 1


class NodeChain:
    def __init__(self, w3: Web3, txs: TransactionManager, factory: Address) -> None:
        self.w3 = w3
        self.txs = txs
        self.factory = contract(w3, "ChannelFactory", factory)
        self._approving: dict[Address, asyncio.Lock] = {}

    async def deposit(self, state: ChannelState, asset_id: Address, amount: int) -> TxReceipt:
        """Deposit `amount` on alice's (the node's) side of the channel."""
        call = self.factory.functions.create_channel_and_deposit(
            state.alice, state.bob, asset_id, amount
        )
        if asset_id == ETH:
            return await self.txs.submit(call, value=amount, purpose="collateral",
                                         channel=state.channel_address)
        await self._allow(asset_id, amount)
        return await self.txs.submit(call, purpose="collateral", channel=state.channel_address)

    async def _allow(self, asset_id: Address, amount: int) -> None:
        """Make sure the factory may move `amount` of the token from the node's account."""
        token = contract(self.w3, "TestToken", asset_id)
        lock = self._approving.setdefault(asset_id, asyncio.Lock())
        async with lock:
            allowance = await asyncio.to_thread(
                token.functions.allowance(self.txs.address, self.factory.address).call)
            if int(allowance) < amount:
                await self.txs.submit(token.functions.approve(self.factory.address,
                                                              MAX_ALLOWANCE), purpose="approve")

    async def withdrawal_used(self, state: ChannelState, nonce: int) -> bool:
        """Whether the channel paid a withdraw commitment with this nonce already."""
        channel = ChannelContract(self.w3, state.channel_address, state.alice, state.bob)

        def read() -> bool:
            return channel.is_deployed() and channel.withdrawal_used(nonce)

        return await asyncio.to_thread(read)

    async def withdrawal_in_flight(self, state: ChannelState,
                                   commitment: WithdrawCommitment) -> bool:
        """Whether a transaction paying this commitment is recorded and not mined yet."""
        # selector, alice, bob and the commitment (static): the same whatever the signatures
        prefix = encode_call("ChannelFactory", "create_channel_and_withdraw", state.alice,
                             state.bob, commitment.as_tuple(), b"", b"")[:4 + 32 * 6]
        pending = await self.txs.store.run(self.txs.store.pending_transactions, self.txs.address)
        return any(t.purpose == "withdraw" and t.data.startswith(prefix) for t in pending)

    async def withdraw(
        self,
        state: ChannelState,
        commitment: WithdrawCommitment,
        signature_alice: bytes,
        signature_bob: bytes,
    ) -> TxReceipt:
        """Pay a double-signed withdraw commitment (deploying the channel if needed)."""
        call = self.factory.functions.create_channel_and_withdraw(
            state.alice, state.bob, commitment.as_tuple(), signature_alice, signature_bob
        )
        return await self.txs.submit(call, purpose="withdraw", channel=state.channel_address)
