"""Event records: the per-channel event log, stream vouchers, message ids seen (replay
protection across restarts) and counterparties' public keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    select,
)
from sqlalchemy import update as sql_update

from ..protocol.serialization import (
    hexb,
)
from ..protocol.types import (
    Address,
)
from . import schema as db
from .base import StoreBase, _dumps, _now
from .fast import Sql, driver, stamp
from .records import (
    Event,
)

log = logging.getLogger(__name__)

_INSERT_EVENT = Sql(
    "INSERT INTO events (channel_address, kind, payload_json, created_at) "
    "VALUES (:address, :kind, :payload, :now) RETURNING id"
)
_PUBLIC_KEY = Sql("SELECT public_key FROM public_keys WHERE address = :address")

SEEN_MESSAGES_KEPT_MS = 3_600_000
"""Seen message ids are kept an hour (any messaging time window is far shorter)."""


class EventRecords(StoreBase):
    """Stream vouchers, seen message ids, the event log and public keys."""

    # --- stream vouchers -------------------------------------------------------------------

    def save_voucher(self, stream_id: bytes, amount: int, signature: bytes) -> None:
        """Keep the highest voucher of a stream (a lower one never replaces it)."""
        values = {"amount": amount, "signature": hexb(signature), "updated_at": _now()}
        with self._write() as conn:
            current = conn.execute(select(db.stream_vouchers.c.amount).where(
                db.stream_vouchers.c.stream_id == hexb(stream_id))).scalar_one_or_none()
            if current is None:
                conn.execute(db.stream_vouchers.insert().values(stream_id=hexb(stream_id),
                                                                **values))
            elif amount > current:
                conn.execute(sql_update(db.stream_vouchers).where(
                    db.stream_vouchers.c.stream_id == hexb(stream_id)).values(**values))

    def voucher(self, stream_id: bytes) -> tuple[int, bytes] | None:
        """The highest voucher kept for a stream: (cumulative amount, signature)."""
        with self._read() as conn:
            row = conn.execute(select(db.stream_vouchers).where(
                db.stream_vouchers.c.stream_id == hexb(stream_id))).one_or_none()
        return None if row is None else (int(row.amount), bytes.fromhex(row.signature[2:]))

    # --- seen messages (replay protection across restarts) ------------------------------

    def remember_message(self, key: bytes, timestamp_ms: int) -> None:
        """Record an admitted message (a replay of it is refused, also after a restart);
        now and then drops what is older than any window could need."""
        with self._write() as conn:
            conn.execute(
                self._insert(db.seen_messages)
                .values(message_key=hexb(key), timestamp_ms=timestamp_ms)
                .on_conflict_do_nothing(index_elements=[db.seen_messages.c.message_key])
            )
            self._seen_count += 1
            if self._seen_count % 1000 == 0:
                conn.execute(delete(db.seen_messages).where(
                    db.seen_messages.c.timestamp_ms < timestamp_ms - SEEN_MESSAGES_KEPT_MS))

    def messages_seen_since(self, since_ms: int) -> list[tuple[bytes, int]]:
        with self._read() as conn:
            return [(bytes.fromhex(row.message_key[2:]), int(row.timestamp_ms))
                    for row in conn.execute(select(db.seen_messages).where(
                        db.seen_messages.c.timestamp_ms >= since_ms))]

    # --- events ----------------------------------------------------------------------------

    def append_event(
        self, channel_address: Address | None, kind: str, payload: Mapping[str, Any]
    ) -> int:
        """Append to the activity log; returns the event's id (increasing)."""
        with self._write() as conn:
            return _append_event(conn, channel_address, kind, payload, _now())

    def events(
        self,
        channel_address: Address | None = None,
        *,
        after_id: int = 0,
        before_id: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Event]:
        """A page of the activity log (of one channel, or all): ids in (after_id, before_id).

        Oldest first by default (page on with `after_id` = last id seen); `newest_first`
        pages backwards with `before_id` = last id seen.
        """
        query = select(db.events).where(db.events.c.id > after_id)
        if before_id is not None:
            query = query.where(db.events.c.id < before_id)
        if channel_address is not None:
            query = query.where(db.events.c.channel_address == channel_address)
        order = db.events.c.id.desc() if newest_first else db.events.c.id
        query = query.order_by(order).limit(limit)
        with self._read() as conn:
            return [
                Event(
                    id=row.id,
                    channel_address=row.channel_address,
                    kind=row.kind,
                    payload=json.loads(row.payload_json),
                    created_at=row.created_at,
                )
                for row in conn.execute(query)
            ]

    # --- public keys -----------------------------------------------------------------------

    def set_public_key(self, address: Address, public_key: bytes) -> None:
        """Remember a party's uncompressed public key (checked by the caller)."""
        values = {"public_key": bytes(public_key), "updated_at": _now()}
        with self._write() as conn:
            conn.execute(
                self._insert(db.public_keys)
                .values(address=address, **values)
                .on_conflict_do_update(index_elements=[db.public_keys.c.address], set_=values)
            )

    def get_public_key(self, address: Address) -> bytes | None:
        with self._raw_read() as raw:
            row = _PUBLIC_KEY.run(raw, self._pg, {"address": address}).fetchone()
        return None if row is None else bytes(row[0])


# --- helpers ---------------------------------------------------------------------------------


def _append_event(
    conn: Connection,
    channel_address: Address | None,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> int:
    pg = conn.dialect.name == "postgresql"
    row = _INSERT_EVENT.run(driver(conn), pg, {
        "address": channel_address, "kind": kind, "payload": _dumps(dict(payload)),
        "now": stamp(pg, now),
    }).fetchone()
    return int(row[0])
