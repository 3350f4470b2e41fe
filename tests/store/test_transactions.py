"""On-chain transactions as the transaction manager records them: before the first send,
every re-send's hash, the receipt, failures, and the account's nonces."""

from __future__ import annotations

import os

import pytest

from connext.store import AlreadyExists, ChannelStore, NotFound, StaleWrite, TxStatus

CHAIN = 31337
NODE = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20
CHANNEL = "0x" + "cc" * 20
CONTRACT = "0x" + "dd" * 20


def _record(store: ChannelStore, nonce: int, sender: str = NODE, **extra: object) -> int:
    fields: dict[str, object] = {"chain_id": CHAIN, "sender": sender, "nonce": nonce,
                                 "to": CONTRACT, "data": b"\x01\x02", "value": 0,
                                 "gas": 100_000, "purpose": "test"}
    fields.update(extra)
    return store.record_transaction(**fields).id  # type: ignore[arg-type]


def test_transaction_lifecycle_keeps_every_hash_and_the_receipt(store: ChannelStore) -> None:
    recorded = store.record_transaction(
        chain_id=CHAIN, sender=NODE, nonce=7, to=CONTRACT, data=b"\xde\xad" * 100,
        value=2**255, gas=210_000, purpose="withdraw", channel_address=CHANNEL,
    )
    assert recorded.status is TxStatus.PENDING
    assert recorded.hashes == ()
    assert (recorded.chain_id, recorded.sender, recorded.nonce, recorded.to) == (
        CHAIN, NODE, 7, CONTRACT)
    assert recorded.data == b"\xde\xad" * 100 and recorded.value == 2**255
    assert [t.id for t in store.pending_transactions(NODE)] == [recorded.id]

    first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
    store.mark_transaction_submitted(recorded.id, first, 10**9)
    store.mark_transaction_submitted(recorded.id, first, 10**9)  # the same send: no-op
    store.mark_transaction_submitted(recorded.id, second, 2 * 10**9)
    store.mark_transaction_submitted(recorded.id, third, 4 * 10**9)
    submitted = store.get_transaction(recorded.id)
    assert submitted.status is TxStatus.SUBMITTED
    assert submitted.hashes == (first, second, third)
    assert [s.gas_price for s in submitted.sends] == [10**9, 2 * 10**9, 4 * 10**9]
    assert store.transaction_by_hash(second) == submitted

    store.mark_transaction_mined(recorded.id, second, block_number=1234, receipt_status=1,
                                 gas_used=50_000)
    mined = store.get_transaction(recorded.id)
    assert mined.status is TxStatus.MINED
    assert (mined.mined_hash, mined.block_number, mined.receipt_status, mined.gas_used) == (
        second, 1234, 1, 50_000)
    assert mined.hashes == (first, second, third)
    assert store.pending_transactions(NODE) == []
    # a late re-send record does not un-mine it, and it cannot be failed any more
    store.mark_transaction_submitted(recorded.id, os.urandom(32), 8 * 10**9)
    assert store.get_transaction(recorded.id).status is TxStatus.MINED
    with pytest.raises(StaleWrite):
        store.mark_transaction_failed(recorded.id, "too late")
    assert store.transactions(channel_address=CHANNEL)[0].id == recorded.id


def test_a_nonce_is_held_by_one_live_transaction(store: ChannelStore) -> None:
    failed = _record(store, 0)
    with pytest.raises(AlreadyExists):
        _record(store, 0)
    _record(store, 0, sender=OTHER)  # another account has its own nonces
    assert store.max_transaction_nonce(NODE) == 0

    store.mark_transaction_failed(failed, "never sent: estimate failed")
    assert store.get_transaction(failed).error == "never sent: estimate failed"
    assert store.get_transaction(failed).status is TxStatus.FAILED
    assert store.max_transaction_nonce(NODE) is None  # a failed one frees its nonce
    again = _record(store, 0)
    assert store.max_transaction_nonce(NODE) == 0
    _record(store, 1)
    _record(store, 5)
    assert store.max_transaction_nonce(NODE) == 5
    assert store.max_transaction_nonce(NODE, chain_id=1) is None
    assert [t.nonce for t in store.pending_transactions(NODE)] == [0, 1, 5]
    assert store.pending_transactions(NODE)[0].id == again


def test_a_hash_belongs_to_one_transaction(store: ChannelStore) -> None:
    first = _record(store, 0)
    second = _record(store, 1)
    tx_hash = os.urandom(32)
    store.mark_transaction_submitted(first, tx_hash, 1)
    with pytest.raises(AlreadyExists):
        store.mark_transaction_submitted(second, tx_hash, 1)
    assert store.get_transaction(second).hashes == ()


def test_unknown_transactions(store: ChannelStore) -> None:
    with pytest.raises(NotFound):
        store.get_transaction(424242)
    with pytest.raises(NotFound):
        store.mark_transaction_submitted(424242, os.urandom(32))
    with pytest.raises(NotFound):
        store.mark_transaction_failed(424242, "x")
    assert store.transaction_by_hash(os.urandom(32)) is None


def test_a_reverted_transaction_is_mined_with_status_zero(store: ChannelStore) -> None:
    tx = _record(store, 3)
    tx_hash = os.urandom(32)
    store.mark_transaction_submitted(tx, tx_hash)
    store.mark_transaction_mined(tx, tx_hash, block_number=9, receipt_status=0, gas_used=21_000)
    reverted = store.get_transaction(tx)
    assert reverted.status is TxStatus.MINED and reverted.receipt_status == 0
    assert store.max_transaction_nonce(NODE) == 3  # its nonce is spent on chain
