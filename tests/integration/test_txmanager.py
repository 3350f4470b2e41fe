"""The transaction manager on a real anvil: a restart neither loses nor duplicates one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connext.chain.anvil import Anvil
from connext.chain.contracts import connect
from connext.chain.txmanager import TransactionManager
from connext.protocol.signing import Signer
from connext.store import ChannelStore, TxStatus


def test_submit_records_then_mines(anvil: Anvil, tmp_path: Path) -> None:
    key = Signer.random()
    anvil.set_balance(key.address, 10**21)
    store = ChannelStore.open(f"sqlite:///{tmp_path / 'tx.sqlite'}")
    w3 = connect(anvil.url)
    recipient = Signer.random().address

    async def scenario() -> None:
        manager = TransactionManager(w3, "0x" + key.private_key.hex(), store)
        await manager.start()
        receipt = await manager.submit(to=recipient, value=12345, purpose="test")
        assert receipt["status"] == 1
        await manager.stop()

    asyncio.run(scenario())
    assert w3.eth.get_balance(recipient) == 12345
    [record] = store.transactions(sender=key.address)
    assert record.status == TxStatus.MINED and record.mined_hash is not None
    assert record.gas_used is not None and record.gas_used > 0
    store.close()


def test_restart_resumes_recorded_transactions_without_duplicates(anvil: Anvil,
                                                                   tmp_path: Path) -> None:
    key = Signer.random()
    anvil.set_balance(key.address, 10**21)
    url = f"sqlite:///{tmp_path / 'tx.sqlite'}"
    w3 = connect(anvil.url)
    sent_then_crashed, recorded_then_crashed = Signer.random().address, Signer.random().address

    async def before_crash() -> None:
        store = ChannelStore.open(url)
        manager = TransactionManager(w3, "0x" + key.private_key.hex(), store)
        await manager.start()
        # 1: recorded and sent, then the process died before the receipt was stored
        first = store.record_transaction(chain_id=anvil.chain_id, sender=key.address, nonce=0,
                                         to=sent_then_crashed, value=111, gas=21000,
                                         purpose="crash-after-send")
        await manager._send(first, bump=0)
        # 2: recorded, then the process died before sending it at all
        store.record_transaction(chain_id=anvil.chain_id, sender=key.address, nonce=1,
                                 to=recorded_then_crashed, value=222, gas=21000,
                                 purpose="crash-before-send")
        store.close()  # no stop(): the process is gone

    async def after_restart() -> None:
        store = ChannelStore.open(url)
        manager = TransactionManager(w3, "0x" + key.private_key.hex(), store)
        await manager.start()
        for _ in range(200):
            if not store.pending_transactions(key.address):
                break
            await asyncio.sleep(0.05)
        await manager.stop()
        records = store.transactions(sender=key.address)
        assert sorted(r.status for r in records) == [TxStatus.MINED, TxStatus.MINED]
        store.close()

    asyncio.run(before_crash())
    asyncio.run(after_restart())
    assert w3.eth.get_balance(sent_then_crashed) == 111
    assert w3.eth.get_balance(recorded_then_crashed) == 222
    assert w3.eth.get_transaction_count(key.address) == 2, "each sent exactly once"
