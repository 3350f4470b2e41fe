"""Routing records: a routed payment's sender hop, recipient hop and status, written with
the channel commits that move them (`NewRouting`, `RoutingStep`) or on their own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Row,
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
from .fast import Sql, driver, read_required_stamp, stamp, uint
from .records import (
    NewRouting,
    Routing,
    RoutingStatus,
    RoutingStep,
)

log = logging.getLogger(__name__)

_ROUTING_COLUMNS = (
    "routing_id", "status", "sender_channel", "sender_transfer_id", "asset_id", "amount",
    "recipient", "recipient_channel", "recipient_transfer_id", "recipient_asset_id",
    "recipient_amount", "error", "created_at", "updated_at",
)
_ROUTING_BY_ID = Sql(
    f"SELECT {', '.join(_ROUTING_COLUMNS)} FROM routings WHERE routing_id = :routing_id")
_INSERT_ROUTING = Sql(
    f"INSERT INTO routings ({', '.join(_ROUTING_COLUMNS[:-3])}, created_at, updated_at) "
    f"VALUES ({', '.join(':' + c for c in _ROUTING_COLUMNS[:-3])}, :now, :now) "
    "ON CONFLICT DO NOTHING RETURNING routing_id"
)
_CLAIM_ROUTING = Sql(
    "UPDATE routings SET status = :to_status, recipient = :recipient, updated_at = :now "
    "WHERE routing_id = :routing_id AND status = :from_status"
)
_ROUTING_STATUS = Sql("SELECT status FROM routings WHERE routing_id = :routing_id")


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
        pg = self._pg
        return _INSERT_ROUTING.run(driver(conn), pg, {
            "routing_id": hexb(record.routing_id), "status": record.status.value,
            "sender_channel": record.sender_channel,
            "sender_transfer_id": hexb(record.sender_transfer_id),
            "asset_id": record.asset_id, "amount": uint(pg, record.amount),
            "recipient": record.recipient, "recipient_channel": None,
            "recipient_transfer_id": None,
            "recipient_asset_id": recipient_asset_id or record.recipient_asset_id,
            "recipient_amount": uint(pg, record.recipient_amount if recipient_amount is None
                                     else recipient_amount),
            "now": stamp(pg, now),
        }).fetchone() is not None

    def get_routing(self, routing_id: bytes) -> Routing | None:
        with self._raw_read() as raw:
            row = _ROUTING_BY_ID.run(raw, self._pg, {"routing_id": hexb(routing_id)}).fetchone()
        return None if row is None else _routing(_RoutingRow(*row))

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
                status = _ROUTING_STATUS.run(driver(conn), self._pg,
                                             {"routing_id": hexb(routing_id)}).fetchone()
                if status is None:
                    raise NotFound(f"no routing 0x{routing_id.hex()}")
                current = status[0]
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
        params = {"routing_id": hexb(routing_id), "from_status": RoutingStatus(from_status).value,
                  "to_status": RoutingStatus(to_status).value, "recipient": recipient,
                  "now": stamp(self._pg, _now())}
        with self._write() as conn:
            return bool(_CLAIM_ROUTING.run(driver(conn), self._pg, params).rowcount == 1)

    def routings_with_status(
        self, statuses: RoutingStatus | str | Collection[RoutingStatus | str]
    ) -> list[Routing]:
        """Routings in any of these statuses, oldest first (the sweep's read, every second)."""
        wanted = _statuses(statuses)
        if not wanted:
            return []
        params = {f"s{i}": status for i, status in enumerate(wanted)}
        with self._raw_read() as raw:
            rows = _routings_in(len(wanted)).run(raw, self._pg, params).fetchall()
        return [_routing(_RoutingRow(*row)) for row in rows]

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


@functools.cache
def _routings_in(count: int) -> Sql:
    """The routings in `count` statuses (`:s0`, `:s1`, ...), oldest first."""
    return Sql(f"SELECT {', '.join(_ROUTING_COLUMNS)} FROM routings WHERE status IN "
               f"({', '.join(f':s{i}' for i in range(count))}) ORDER BY created_at, routing_id")


def _statuses(
    statuses: RoutingStatus | str | Collection[RoutingStatus | str] | None,
) -> list[str]:
    if statuses is None:
        return []
    if isinstance(statuses, str):
        return [RoutingStatus(statuses).value]
    return [RoutingStatus(s).value for s in statuses]


def _step_routing(conn: Connection, step: RoutingStep, now: datetime) -> None:
    pg = conn.dialect.name == "postgresql"
    expected = None if step.expected is None else _statuses(step.expected)
    params: dict[str, Any] = {
        "routing_id": hexb(step.routing_id), "status": step.status.value,
        "now": stamp(pg, now), "recipient_channel": step.recipient_channel,
        "recipient_transfer_id": None if step.recipient_transfer_id is None
        else hexb(step.recipient_transfer_id),
    }
    for i, status in enumerate(expected or ()):
        params[f"expected{i}"] = status
    _step_statement(None if expected is None else len(expected)).run(driver(conn), pg, params)


@functools.cache
def _step_statement(expected: int | None) -> Sql:
    """A routing's step (fields left none are kept), only from one of `expected` statuses
    when that many are given."""
    where = ""
    if expected == 0:
        where = " AND 1 = 0"
    elif expected is not None:
        where = " AND status IN (" + ", ".join(f":expected{i}" for i in range(expected)) + ")"
    return Sql(
        "UPDATE routings SET status = :status, updated_at = :now, "
        "recipient_channel = COALESCE(:recipient_channel, recipient_channel), "
        "recipient_transfer_id = COALESCE(:recipient_transfer_id, recipient_transfer_id) "
        "WHERE routing_id = :routing_id" + where
    )


def _get_routing_row(conn: Connection, routing_id: bytes) -> _RoutingRow:
    pg = conn.dialect.name == "postgresql"
    row = _ROUTING_BY_ID.run(driver(conn), pg, {"routing_id": hexb(routing_id)}).fetchone()
    assert row is not None
    return _RoutingRow(*row)


class _RoutingRow(NamedTuple):
    """The columns of `_ROUTING_COLUMNS`, as a driver returns them."""

    routing_id: str
    status: str
    sender_channel: str
    sender_transfer_id: str
    asset_id: str
    amount: Any
    recipient: str | None
    recipient_channel: str | None
    recipient_transfer_id: str | None
    recipient_asset_id: str | None
    recipient_amount: Any
    error: str | None
    created_at: Any
    updated_at: Any


def _routing(row: Row[Any] | _RoutingRow) -> Routing:
    return Routing(
        routing_id=bytes.fromhex(row.routing_id[2:]),
        status=RoutingStatus(row.status),
        sender_channel=row.sender_channel,
        sender_transfer_id=bytes.fromhex(row.sender_transfer_id[2:]),
        asset_id=row.asset_id,
        amount=int(row.amount),
        recipient=row.recipient,
        recipient_channel=row.recipient_channel,
        recipient_transfer_id=None if row.recipient_transfer_id is None
        else bytes.fromhex(row.recipient_transfer_id[2:]),
        recipient_asset_id=row.recipient_asset_id,
        recipient_amount=None if row.recipient_amount is None else int(row.recipient_amount),
        error=row.error,
        created_at=read_required_stamp(row.created_at),
        updated_at=read_required_stamp(row.updated_at),
    )
