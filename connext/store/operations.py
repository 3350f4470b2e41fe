"""Operator records: collateral profiles set per channel (admin API) and the read-only
queries of the node's books that the admin API, the metrics and the dashboard show.

Nothing here changes a channel or a routing: profiles are operator settings, the rest only
reads what the channel commits wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select

from ..protocol.types import Address
from . import schema as db
from .base import StoreBase, _now
from .fast import Sql, driver, stamp
from .records import Event, Routing
from .routings import _routing


@dataclass(frozen=True)
class StoredProfile:
    """A collateral profile of one channel and asset (base units), as the operator set it."""

    channel_address: Address
    asset_id: Address
    threshold: int
    target: int
    reclaim_threshold: int
    cap: int
    updated_at: datetime


@dataclass(frozen=True)
class RoutingTotal:
    """How many routed payments of one asset and status were made (in one minute, for a
    timeline), and their amount in (base units, exact)."""

    asset_id: Address
    status: str
    payments: int
    amount: int
    minute: datetime | None = None
    """The minute they were made in (UTC), when totals are asked per minute."""


# SQLite keeps a uint256 as decimal text and its SUM would go through a 64-bit integer or a
# float. Summed in nine slices of nine digits instead, each slice's SUM stays exact below
# 10^9 rows; PostgreSQL sums its NUMERIC exactly.
_SLICES = 9
_SQLITE_SUM = ", ".join(f"SUM(CAST(substr(amount, {-9 * (k + 1)}, 9) AS INTEGER))"
                        for k in range(_SLICES))


def _totals_statement(pg: bool, by_minute: bool) -> Sql:
    minute = ""
    if by_minute:
        minute = ("date_trunc('minute', created_at AT TIME ZONE 'UTC'), " if pg
                  else "substr(created_at, 1, 16), ")
    group = ("1, 2, 3" if by_minute else "1, 2")
    return Sql(f"SELECT {minute}asset_id, status, COUNT(*), "
               f"{'SUM(amount)' if pg else _SQLITE_SUM} FROM routings "
               f"WHERE created_at >= :since GROUP BY {group}")


_TOTALS = {(pg, by_minute): _totals_statement(pg, by_minute)
           for pg in (False, True) for by_minute in (False, True)}


class OperationRecords(StoreBase):
    """Per-channel collateral profiles, and reads of routed payments for operators."""

    # --- collateral profiles ---------------------------------------------------------------

    def set_channel_profile(self, channel_address: Address, asset_id: Address, *,
                            threshold: int, target: int, reclaim_threshold: int,
                            cap: int) -> StoredProfile:
        """Set (insert or replace) the profile of one channel and asset."""
        now = _now()
        values = {"threshold": threshold, "target": target,
                  "reclaim_threshold": reclaim_threshold, "cap": cap, "updated_at": now}
        table = db.collateral_profiles
        with self._write() as conn:
            conn.execute(delete(table).where(table.c.channel_address == channel_address,
                                             table.c.asset_id == asset_id))
            conn.execute(table.insert().values(channel_address=channel_address,
                                               asset_id=asset_id, **values))
        return StoredProfile(channel_address, asset_id, threshold, target, reclaim_threshold,
                             cap, now)

    def delete_channel_profile(self, channel_address: Address, asset_id: Address) -> bool:
        """Forget a channel's own profile (the asset's profile applies again)."""
        table = db.collateral_profiles
        with self._write() as conn:
            result = conn.execute(delete(table).where(table.c.channel_address == channel_address,
                                                      table.c.asset_id == asset_id))
        return bool(result.rowcount)

    def channel_profiles(self, channel_address: Address | None = None) -> list[StoredProfile]:
        """Every profile set per channel (optionally of one channel)."""
        table = db.collateral_profiles
        query = select(table).order_by(table.c.channel_address, table.c.asset_id)
        if channel_address is not None:
            query = query.where(table.c.channel_address == channel_address)
        with self._read() as conn:
            return [StoredProfile(r.channel_address, r.asset_id, r.threshold, r.target,
                                  r.reclaim_threshold, r.cap, r.updated_at)
                    for r in conn.execute(query)]

    # --- the books ---------------------------------------------------------------------

    def recent_routings(self, *, limit: int = 50,
                        statuses: tuple[str, ...] | None = None) -> list[Routing]:
        """The most recently created routed payments first (optionally of some statuses)."""
        query = select(db.routings).order_by(db.routings.c.created_at.desc()).limit(limit)
        if statuses is not None:
            query = query.where(db.routings.c.status.in_(statuses))
        with self._read() as conn:
            return [_routing(row) for row in conn.execute(query)]

    def routing_totals(self, since: datetime, *, by_minute: bool = False
                       ) -> list[RoutingTotal]:
        """Routed payments made since `since` counted and summed per asset and status (and
        per minute), in SQL: however many there are, no row comes into Python."""
        with self._read() as conn:
            rows = _TOTALS[self._pg, by_minute].run(
                driver(conn), self._pg, {"since": stamp(self._pg, since)}).fetchall()
        totals = []
        for row in rows:
            minute = None
            if by_minute:
                first, *row = row
                minute = (first if isinstance(first, datetime)
                          else datetime.fromisoformat(first)).replace(tzinfo=UTC)
            asset_id, status, count, *sums = row
            amount = (int(sums[0]) if self._pg
                      else sum(int(part) * 10 ** (9 * k) for k, part in enumerate(sums)))
            totals.append(RoutingTotal(asset_id, status, int(count), amount, minute))
        return totals

    def routing_counts(self) -> dict[str, int]:
        """How many routed payments there are per status."""
        query = select(db.routings.c.status, func.count()).group_by(db.routings.c.status)
        with self._read() as conn:
            return {status: int(count) for status, count in conn.execute(query)}

    def channel_count(self, party: Address) -> int:
        channels = db.channels
        query = select(func.count()).select_from(channels).where(
            (channels.c.alice == party) | (channels.c.bob == party))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def events_of_kinds(self, kinds: tuple[str, ...], *, limit: int = 50) -> list[Event]:
        """The newest events of these kinds first (the node's collateral log)."""
        query = (select(db.events).where(db.events.c.kind.in_(kinds))
                 .order_by(db.events.c.id.desc()).limit(limit))
        with self._read() as conn:
            return [Event(id=row.id, channel_address=row.channel_address, kind=row.kind,
                          payload=json.loads(row.payload_json), created_at=row.created_at)
                    for row in conn.execute(query)]
