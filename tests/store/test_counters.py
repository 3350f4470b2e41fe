"""The operation counters `make bench` reads: each signature, transaction and statement is
counted once, where it happens."""

from __future__ import annotations

import os

from connext.counters import COUNTS
from connext.protocol.signing import Signer, recover, verifies
from connext.store import ChannelStore


def test_signatures_are_counted_once_each() -> None:
    signer = Signer.random()
    before = COUNTS.snapshot()
    signature = signer.sign(b"\x01" * 32)
    assert recover(b"\x01" * 32, signature) == signer.address
    from coincurve import PublicKey
    assert verifies(PublicKey(signer.public_key), b"\x01" * 32, signature)
    after = COUNTS.snapshot()
    assert after["signatures_made"] - before["signatures_made"] == 1
    assert after["signatures_checked"] - before["signatures_checked"] == 2


def test_database_transactions_and_statements_are_counted(store: ChannelStore) -> None:
    before = COUNTS.snapshot()
    store.remember_message(os.urandom(36), 1_000)
    assert len(store.messages_seen_since(0)) >= 1
    after = COUNTS.snapshot()
    assert after["db_writes"] - before["db_writes"] == 1
    assert after["db_reads"] - before["db_reads"] == 1
    # at least the insert and the select (BEGIN and COMMIT depend on the backend)
    assert after["db_statements"] - before["db_statements"] >= 2
