"""Chain records: the transactions a party sends (recorded before they are signed, so a
restart never reuses a nonce), how far each watcher has scanned, registered secrets.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from ..protocol.serialization import (
    hexb,
)
from ..protocol.types import (
    Address,
)
from . import schema as db
from .base import StoreBase, _now
from .errors import AlreadyExists, NotFound, StaleWrite
from .records import (
    StoredTransaction,
    TxSend,
    TxStatus,
)

log = logging.getLogger(__name__)


class ChainRecords(StoreBase):
    """Chain transactions (nonces, sends, receipts), watcher progress and registered
    secrets."""

    # --- chain transactions --------------------------------------------------------------

    def record_transaction(
        self,
        *,
        chain_id: int,
        sender: Address,
        nonce: int,
        to: Address | None,
        data: bytes = b"",
        value: int = 0,
        gas: int | None = None,
        purpose: str,
        channel_address: Address | None = None,
    ) -> StoredTransaction:
        """Record a transaction before it is first sent (status pending).

        `AlreadyExists` if a transaction of this account that has not failed already holds
        this nonce on this chain: that is how two processes sharing an account find out.
        """
        now = _now()
        try:
            with self._write() as conn:
                key = conn.execute(insert(db.chain_transactions).values(
                    chain_id=chain_id, sender=sender, nonce=nonce, to_address=to,
                    data=bytes(data), value=value, gas=gas, purpose=purpose,
                    channel_address=channel_address, status=TxStatus.PENDING.value,
                    created_at=now, updated_at=now,
                )).inserted_primary_key
                assert key is not None
                return _get_transaction(conn, int(key[0]))
        except IntegrityError:
            raise AlreadyExists(
                f"nonce {nonce} of {sender} on chain {chain_id} is already taken"
            ) from None

    def get_transaction(self, tx_id: int) -> StoredTransaction:
        """The transaction with every hash it was sent under; `NotFound` if unknown."""
        with self._read() as conn:
            return _get_transaction(conn, tx_id)

    def transaction_by_hash(self, tx_hash: bytes) -> StoredTransaction | None:
        with self._read() as conn:
            tx_id = conn.execute(
                select(db.transaction_sends.c.transaction_id)
                .where(db.transaction_sends.c.tx_hash == hexb(tx_hash))
            ).scalar_one_or_none()
            return None if tx_id is None else _get_transaction(conn, tx_id)

    def mark_transaction_submitted(
        self, tx_id: int, tx_hash: bytes, gas_price: int | None = None
    ) -> None:
        """Record one (re-)send: keeps every hash; status becomes submitted unless mined."""
        now = _now()
        with self._write() as conn:
            status = _transaction_status(conn, tx_id)
            _record_send(conn, tx_id, tx_hash, gas_price, now)
            if status in (TxStatus.PENDING, TxStatus.SUBMITTED):
                conn.execute(sql_update(db.chain_transactions)
                             .where(db.chain_transactions.c.id == tx_id)
                             .values(status=TxStatus.SUBMITTED.value, updated_at=now))

    def mark_transaction_mined(
        self,
        tx_id: int,
        tx_hash: bytes,
        block_number: int,
        receipt_status: int,
        gas_used: int,
    ) -> None:
        """Record the receipt of whichever hash was mined (status 0 = reverted)."""
        now = _now()
        with self._write() as conn:
            _transaction_status(conn, tx_id)
            _record_send(conn, tx_id, tx_hash, None, now)
            conn.execute(
                sql_update(db.chain_transactions)
                .where(db.chain_transactions.c.id == tx_id)
                .values(status=TxStatus.MINED.value, mined_hash=hexb(tx_hash),
                        block_number=block_number, receipt_status=receipt_status,
                        gas_used=gas_used, updated_at=now)
            )

    def mark_transaction_failed(self, tx_id: int, error: str) -> None:
        """Give up on a transaction that was not mined; `StaleWrite` if it was."""
        with self._write() as conn:
            written = conn.execute(
                sql_update(db.chain_transactions)
                .where(db.chain_transactions.c.id == tx_id,
                       db.chain_transactions.c.status != TxStatus.MINED.value)
                .values(status=TxStatus.FAILED.value, error=error, updated_at=_now())
            ).rowcount
            if written != 1:
                _transaction_status(conn, tx_id)  # NotFound if unknown
                raise StaleWrite(f"transaction {tx_id} is already mined")

    def pending_transactions(
        self, sender: Address, *, chain_id: int | None = None
    ) -> list[StoredTransaction]:
        """The account's transactions not yet mined nor failed, by nonce."""
        query = (
            select(db.chain_transactions.c.id)
            .where(db.chain_transactions.c.sender == sender,
                   db.chain_transactions.c.status.in_([TxStatus.PENDING.value,
                                                    TxStatus.SUBMITTED.value]))
            .order_by(db.chain_transactions.c.nonce, db.chain_transactions.c.id)
        )
        if chain_id is not None:
            query = query.where(db.chain_transactions.c.chain_id == chain_id)
        with self._read() as conn:
            return [_get_transaction(conn, tx_id) for tx_id in conn.scalars(query).all()]

    def max_transaction_nonce(
        self, sender: Address, *, chain_id: int | None = None
    ) -> int | None:
        """The highest nonce the account's live (not failed) transactions hold, or None."""
        query = select(func.max(db.chain_transactions.c.nonce)).where(
            db.chain_transactions.c.sender == sender,
            db.chain_transactions.c.status != TxStatus.FAILED.value,
        )
        if chain_id is not None:
            query = query.where(db.chain_transactions.c.chain_id == chain_id)
        with self._read() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else int(value)

    def transactions(
        self,
        *,
        sender: Address | None = None,
        channel_address: Address | None = None,
        limit: int = 100,
    ) -> list[StoredTransaction]:
        """The most recent transactions first (optionally of one account or channel)."""
        query = select(db.chain_transactions.c.id).order_by(db.chain_transactions.c.id.desc())
        if sender is not None:
            query = query.where(db.chain_transactions.c.sender == sender)
        if channel_address is not None:
            query = query.where(db.chain_transactions.c.channel_address == channel_address)
        with self._read() as conn:
            ids = conn.scalars(query.limit(limit)).all()
            return [_get_transaction(conn, tx_id) for tx_id in ids]

    # --- watchers --------------------------------------------------------------------------

    def get_last_block(self, watcher: str) -> int | None:
        """The last block `watcher` processed completely, or None if it never ran."""
        with self._read() as conn:
            return conn.execute(
                select(db.watcher_blocks.c.block_number)
                .where(db.watcher_blocks.c.watcher == watcher)
            ).scalar_one_or_none()

    def set_last_block(self, watcher: str, block: int) -> None:
        values = {"block_number": block, "updated_at": _now()}
        with self._write() as conn:
            conn.execute(
                self._insert(db.watcher_blocks)
                .values(watcher=watcher, **values)
                .on_conflict_do_update(index_elements=[db.watcher_blocks.c.watcher], set_=values)
            )

    # --- registered secrets ----------------------------------------------------------------

    def add_registered_secret(self, lock_hash: bytes, preimage: bytes, registered_at: int,
                              block_number: int) -> None:
        """Remember a preimage registered on chain (the first registration counts)."""
        with self._write() as conn:
            conn.execute(
                self._insert(db.registered_secrets)
                .values(lock_hash=hexb(lock_hash), preimage=hexb(preimage),
                        registered_at=registered_at, block_number=block_number)
                .on_conflict_do_nothing(index_elements=[db.registered_secrets.c.lock_hash])
            )

    def registered_secrets(self) -> list[tuple[bytes, bytes, int]]:
        """(lock hash, preimage, block time of registration) of every registered secret."""
        with self._read() as conn:
            return [(bytes.fromhex(row.lock_hash[2:]), bytes.fromhex(row.preimage[2:]),
                     int(row.registered_at))
                    for row in conn.execute(select(db.registered_secrets))]


def _record_send(conn: Connection, tx_id: int, tx_hash: bytes, gas_price: int | None,
                 now: datetime) -> None:
    """Attach `tx_hash` to transaction `tx_id` (once); a hash of another one is refused."""
    owner = conn.execute(
        select(db.transaction_sends.c.transaction_id)
        .where(db.transaction_sends.c.tx_hash == hexb(tx_hash))
    ).scalar_one_or_none()
    if owner is not None and owner != tx_id:
        raise AlreadyExists(f"hash {hexb(tx_hash)} belongs to transaction {owner}")
    if owner is None:
        conn.execute(insert(db.transaction_sends).values(
            transaction_id=tx_id, tx_hash=hexb(tx_hash), gas_price=gas_price, sent_at=now,
        ))


def _transaction_status(conn: Connection, tx_id: int) -> TxStatus:
    status = conn.execute(
        select(db.chain_transactions.c.status).where(db.chain_transactions.c.id == tx_id)
    ).scalar_one_or_none()
    if status is None:
        raise NotFound(f"no transaction {tx_id}")
    return TxStatus(status)


def _get_transaction(conn: Connection, tx_id: int) -> StoredTransaction:
    row = conn.execute(
        select(db.chain_transactions).where(db.chain_transactions.c.id == tx_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no transaction {tx_id}")
    sends = tuple(
        TxSend(tx_hash=bytes.fromhex(s.tx_hash[2:]), gas_price=s.gas_price, sent_at=s.sent_at)
        for s in conn.execute(
            select(db.transaction_sends)
            .where(db.transaction_sends.c.transaction_id == tx_id)
            .order_by(db.transaction_sends.c.id)
        )
    )
    return StoredTransaction(
        id=row.id,
        chain_id=row.chain_id,
        sender=row.sender,
        nonce=row.nonce,
        to=row.to_address,
        data=bytes(row.data),
        value=row.value,
        gas=row.gas,
        purpose=row.purpose,
        channel_address=row.channel_address,
        status=TxStatus(row.status),
        sends=sends,
        mined_hash=None if row.mined_hash is None else bytes.fromhex(row.mined_hash[2:]),
        block_number=row.block_number,
        receipt_status=row.receipt_status,
        gas_used=row.gas_used,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
