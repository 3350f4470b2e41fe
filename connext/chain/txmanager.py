"""The node's transaction manager: the one owner of its account's nonce.

Every transaction is recorded in the store before it is sent (with the nonce it uses and
every hash it is sent under), re-sent with a higher fee when it does not get mined, and its
receipt recorded. On start, transactions that were recorded but not mined are resumed with
their recorded nonce, so a restart neither loses nor duplicates one. Nonces are handed out
under a lock; waiting for receipts happens outside it, so many can be in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import TxParams, TxReceipt

from ..store import ChannelStore, StoredTransaction

log = logging.getLogger(__name__)

PRIORITY_FEE = 10**9
FEE_BUMP_PERCENT = 20
"""Replacement fee increase; nodes require >= 10% to accept a same-nonce replacement."""


class TransactionReverted(RuntimeError):
    def __init__(self, receipt: TxReceipt) -> None:
        super().__init__(f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted")
        self.receipt = receipt


class TransactionManager:
    def __init__(
        self,
        w3: Web3,
        private_key: str,
        store: ChannelStore,
        *,
        resend_after: float = 30.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.address: str = self.account.address
        self.store = store
        self.resend_after = resend_after
        self.poll_interval = poll_interval
        self._nonce_lock = asyncio.Lock()
        self._resumed: list[asyncio.Task[TxReceipt]] = []

    async def start(self) -> None:
        """Resume every transaction recorded but not mined before a restart."""
        self.chain_id = await asyncio.to_thread(lambda: self.w3.eth.chain_id)
        pending = await self.store.run(self.store.pending_transactions, self.address)
        for record in pending:
            log.info("resuming transaction %d (nonce %d, %s)", record.id, record.nonce,
                     record.purpose)
            self._resumed.append(asyncio.create_task(self._see_through(record, resumed=True)))

    async def stop(self) -> None:
        for task in self._resumed:
            task.cancel()
        await asyncio.gather(*self._resumed, return_exceptions=True)

    async def submit(
        self,
        call: ContractFunction | None = None,
        *,
        to: str | None = None,
        data: bytes = b"",
        value: int = 0,
        purpose: str,
        channel: str | None = None,
    ) -> TxReceipt:
        """Send a contract call (or raw `to`/`data`), wait until mined, return the receipt.

        Reverts found by gas estimation raise before anything is recorded or sent.
        """
        if call is not None:
            params = cast(TxParams, {"from": self.address, "value": value})
            built = await asyncio.to_thread(call.build_transaction, params)
            to, data = str(built["to"]), bytes.fromhex(str(built["data"]).removeprefix("0x"))
            gas = int(built["gas"])
        else:
            assert to is not None, "give a contract call or a destination"
            gas = await asyncio.to_thread(
                self.w3.eth.estimate_gas,
                cast(TxParams, {"from": self.address, "to": to, "data": data, "value": value}),
            )
        async with self._nonce_lock:
            nonce = await self._next_nonce()
            record = await self.store.run(
                self.store.record_transaction,
                chain_id=self.chain_id,
                sender=self.address,
                nonce=nonce,
                to=to,
                data=data,
                value=value,
                gas=gas * 6 // 5,
                purpose=purpose,
                channel_address=channel,
            )
            await self._send(record, bump=0)
        return await self._see_through(record)

    async def _next_nonce(self) -> int:
        chain_nonce = await asyncio.to_thread(
            self.w3.eth.get_transaction_count, self.address, "pending"  # type: ignore[arg-type]
        )
        recorded = await self.store.run(self.store.max_transaction_nonce, self.address)
        return max(int(chain_nonce), -1 if recorded is None else recorded + 1)

    async def _send(self, record: StoredTransaction, bump: int) -> None:
        block = await asyncio.to_thread(self.w3.eth.get_block, "latest")
        base = int(block.get("baseFeePerGas") or 0)
        priority = PRIORITY_FEE * (100 + FEE_BUMP_PERCENT) ** bump // 100**bump
        max_fee = (2 * base + PRIORITY_FEE) * (100 + FEE_BUMP_PERCENT) ** bump // 100**bump
        tx: dict[str, Any] = {
            "chainId": record.chain_id,
            "nonce": record.nonce,
            "to": Web3.to_checksum_address(_destination(record)),
            "data": record.data,
            "value": record.value,
            "gas": record.gas,
            "maxFeePerGas": max(max_fee, priority),
            "maxPriorityFeePerGas": priority,
        }
        signed = self.account.sign_transaction(tx)
        tx_hash = bytes(signed.hash)
        # record the hash first: a crash right after sending still knows what to look for
        await self.store.run(self.store.mark_transaction_submitted, record.id, tx_hash,
                             max_fee)
        try:
            await asyncio.to_thread(self.w3.eth.send_raw_transaction, signed.raw_transaction)
        except ValueError as exc:  # e.g. "nonce too low" when an earlier send did land
            log.info("send of transaction %d: %s", record.id, exc)

    async def _see_through(self, record: StoredTransaction, *,
                           resumed: bool = False) -> TxReceipt:
        """Wait for any of the record's hashes to be mined, re-sending with bumped fees.
        A resumed transaction the chain has never seen (we stopped before its send got
        through) is sent again at once: every later nonce of ours waits behind it."""
        bump = 0
        sent_at = time.monotonic()
        if resumed and not await self._known_to_chain(record):
            sent_at = -self.resend_after
        while True:
            current = await self.store.run(self.store.get_transaction, record.id)
            for tx_hash in current.hashes:
                receipt = await self._receipt(tx_hash)
                if receipt is None:
                    continue
                await self.store.run(
                    self.store.mark_transaction_mined, record.id, tx_hash,
                    int(receipt["blockNumber"]), int(receipt["status"]), int(receipt["gasUsed"]),
                )
                if receipt["status"] != 1:
                    raise TransactionReverted(receipt)
                return receipt
            if current.hashes and await self._nonce_taken_by_other(current):
                await self.store.run(self.store.mark_transaction_failed, record.id,
                                     "its nonce was used by another transaction")
                raise RuntimeError(f"transaction {record.id} was replaced on chain")
            if not current.hashes or time.monotonic() - sent_at > self.resend_after:
                bump += 1
                await self._send(current, bump)
                sent_at = time.monotonic()
            await asyncio.sleep(self.poll_interval)

    async def _nonce_taken_by_other(self, record: StoredTransaction) -> bool:
        mined_nonce = await asyncio.to_thread(
            self.w3.eth.get_transaction_count, self.address, "latest"  # type: ignore[arg-type]
        )
        if int(mined_nonce) <= record.nonce:
            return False
        # the nonce is used: by one of our hashes (receipt visible next poll) or another tx
        for tx_hash in record.hashes:
            if await self._receipt(tx_hash) is not None:
                return False
        return True

    async def _known_to_chain(self, record: StoredTransaction) -> bool:
        """Whether the chain has any of the record's hashes (pending or mined)."""
        for tx_hash in record.hashes:
            try:
                await asyncio.to_thread(self.w3.eth.get_transaction, tx_hash)  # type: ignore[arg-type]
                return True
            except TransactionNotFound:
                continue
        return False

    async def _receipt(self, tx_hash: bytes) -> TxReceipt | None:
        try:
            return await asyncio.to_thread(self.w3.eth.get_transaction_receipt, tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None


def _destination(record: StoredTransaction) -> str:
    if record.to is None:
        raise ValueError(f"transaction {record.id} has no destination")
    return record.to
