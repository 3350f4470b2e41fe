"""Routing records: a routed payment's sender hop, recipient hop and status, written with
the channel commits that move them (`NewRouting`, `RoutingStep`) or on their own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
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
from .base import StoreBase, _now
from .errors import AlreadyExists, NotFound, StaleWrite
from .records import (
    NewRouting,
    Routing,
    RoutingStatus,
    RoutingStep,
)

log = logging.getLogger(__name__)

_ROUTING_BY_ID = select(db.routings).where(db.routings.c.routing_id == bindparam("p_routing_id"))


class RoutingRecords(StoreBase):
    """The two hops of each routed payment (the node's books)."""

    # --- routing -------------------------------------------------------------------------

    def create_routing(
        self,
        *,
        routing_id: bytes,
        sender_channel: Address,
        sender_transfer_id: bytes,
        asset_id: Address,
        amount: int,
        recipient: Address | None = None,
        recipient_asset_id: Address | None = None,
        recipient_amount: int | None = None,
        status: RoutingStatus | str = RoutingStatus.PENDING,
    ) -> Routing:
        """Record a payment to forward (status pending, or link for a link payment that
        waits for a claim); `AlreadyExists` if it is known."""
        return self.record_routing(
            NewRouting(routing_id, sender_channel, sender_transfer_id, asset_id, amount,
                       recipient, RoutingStatus(status)),
            recipient_asset_id=recipient_asset_id, recipient_amount=recipient_amount)

    def record_routing(self, record: NewRouting, *, recipient_asset_id: Address | None = None,
                       recipient_amount: int | None = None) -> Routing:
        """`create_routing` of a `NewRouting`; `AlreadyExists` if it is known."""
        with self._write() as conn:
            if not self._insert_routing(conn, record, _now(), recipient_asset_id=recipient_asset_id,
                                        recipient_amount=recipient_amount):
                raise AlreadyExists(f"routing 0x{record.routing_id.hex()} is already recorded")
            return _routing(_get_routing_row(conn, record.routing_id))

    def _insert_routing(self, conn: Connection, record: NewRouting, now: datetime, *,
                        recipient_asset_id: Address | None = None,
                        recipient_amount: int | None = None) -> bool:
        """Insert a routing record; False (nothing written) when its id is known."""
        return conn.execute(self._insert_routing_statement, {
            "routing_id": hexb(record.routing_id), "status": record.status.value,
            "sender_channel": record.sender_channel,
            "sender_transfer_id": hexb(record.sender_transfer_id),
            "asset_id": record.asset_id, "amount": record.amount,
            "recipient": record.recipient,
            "recipient_asset_id": recipient_asset_id or record.recipient_asset_id,
            "recipient_amount": (record.recipient_amount if recipient_amount is None
                                 else recipient_amount),
            "created_at": now, "updated_at": now,
        }).first() is not None

    @functools.cached_property
    def _insert_routing_statement(self) -> Any:
        return (self._insert(db.routings).on_conflict_do_nothing()
                .returning(db.routings.c.routing_id))

    def get_routing(self, routing_id: bytes) -> Routing | None:
        with self._read() as conn:
            row = conn.execute(_ROUTING_BY_ID, {"p_routing_id": hexb(routing_id)}).one_or_none()
        return None if row is None else _routing(row)

    def update_routing_status(
        self,
        routing_id: bytes,
        status: RoutingStatus | str,
        *,
        recipient_channel: Address | None = None,
        recipient_transfer_id: bytes | None = None,
        recipient_amount: int | None = None,
        error: str | None = None,
        expected: RoutingStatus | str | Collection[RoutingStatus | str] | None = None,
    ) -> Routing:
        """Move a routing to `status`, setting the fields given (others are kept).

        With `expected`, only from that status (or one of those): else `StaleWrite`, so two
        processes cannot both take the same step. `NotFound` for an unknown routing id.
        """
        new_status = RoutingStatus(status)
        values: dict[str, Any] = {"status": new_status.value, "updated_at": _now()}
        if recipient_channel is not None:
            values["recipient_channel"] = recipient_channel
        if recipient_transfer_id is not None:
            values["recipient_transfer_id"] = hexb(recipient_transfer_id)
        if recipient_amount is not None:
            values["recipient_amount"] = recipient_amount
        if error is not None:
            values["error"] = error
        stmt = sql_update(db.routings).where(db.routings.c.routing_id == hexb(routing_id))
        if expected is not None:
            stmt = stmt.where(db.routings.c.status.in_(_statuses(expected)))
        with self._write() as conn:
            if conn.execute(stmt.values(**values)).rowcount != 1:
                current = conn.execute(
                    select(db.routings.c.status).where(db.routings.c.routing_id == hexb(routing_id))
                ).scalar_one_or_none()
                if current is None:
                    raise NotFound(f"no routing 0x{routing_id.hex()}")
                raise StaleWrite(
                    f"routing 0x{routing_id.hex()} is {current}, not {_statuses(expected)}"
                )
            return _routing(_get_routing_row(conn, routing_id))

    def claim_routing(
        self,
        routing_id: bytes,
        from_status: RoutingStatus | str,
        to_status: RoutingStatus | str,
        *,
        recipient: Address | None,
    ) -> bool:
        """Compare-and-set: move the routing from `from_status` to `to_status` and set its
        recipient (None clears it), only if it is in `from_status` now. True when this call
        made the move; of concurrent calls (any process sharing the database) one wins."""
        stmt = (
            sql_update(db.routings)
            .where(db.routings.c.routing_id == hexb(routing_id),
                   db.routings.c.status == RoutingStatus(from_status).value)
            .values(status=RoutingStatus(to_status).value, recipient=recipient,
                    updated_at=_now())
        )
        with self._write() as conn:
            return bool(conn.execute(stmt).rowcount == 1)

    def routings_with_status(
        self, statuses: RoutingStatus | str | Collection[RoutingStatus | str]
    ) -> list[Routing]:
        """Routings in any of these statuses, oldest first."""
        query = (
            select(db.routings)
            .where(db.routings.c.status.in_(_statuses(statuses)))
            .order_by(db.routings.c.created_at, db.routings.c.routing_id)
        )
        with self._read() as conn:
            return [_routing(row) for row in conn.execute(query)]

    def pending_forwards(self, recipient: Address) -> list[Routing]:
        """Payments still to be forwarded to `recipient` (to deliver when it reconnects)."""
        query = (
            select(db.routings)
            .where(db.routings.c.recipient == recipient,
                   db.routings.c.status == RoutingStatus.PENDING.value)
            .order_by(db.routings.c.created_at, db.routings.c.routing_id)
        )
        with self._read() as conn:
            return [_routing(row) for row in conn.execute(query)]


def _statuses(
    statuses: RoutingStatus | str | Collection[RoutingStatus | str] | None,
) -> list[str]:
    if statuses is None:
        return []
    if isinstance(statuses, str):
        return [RoutingStatus(statuses).value]
    return [RoutingStatus(s).value for s in statuses]


def _step_routing(conn: Connection, step: RoutingStep, now: datetime) -> None:
    values: dict[str, Any] = {"status": step.status.value, "updated_at": now}
    if step.recipient_channel is not None:
        values["recipient_channel"] = step.recipient_channel
    if step.recipient_transfer_id is not None:
        values["recipient_transfer_id"] = hexb(step.recipient_transfer_id)
    stmt = sql_update(db.routings).where(db.routings.c.routing_id == hexb(step.routing_id))
    if step.expected is not None:
        stmt = stmt.where(db.routings.c.status.in_(_statuses(step.expected)))
    conn.execute(stmt.values(**values))


def _get_routing_row(conn: Connection, routing_id: bytes) -> Row[Any]:
    return conn.execute(_ROUTING_BY_ID, {"p_routing_id": hexb(routing_id)}).one()


def _routing(row: Row[Any]) -> Routing:
    return Routing(
        routing_id=bytes.fromhex(row.routing_id[2:]),
        status=RoutingStatus(row.status),
        sender_channel=row.sender_channel,
        sender_transfer_id=bytes.fromhex(row.sender_transfer_id[2:]),
        asset_id=row.asset_id,
        amount=row.amount,
        recipient=row.recipient,
        recipient_channel=row.recipient_channel,
        recipient_transfer_id=None if row.recipient_transfer_id is None
        else bytes.fromhex(row.recipient_transfer_id[2:]),
        recipient_asset_id=row.recipient_asset_id,
        recipient_amount=row.recipient_amount,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
