"""Operator records: collateral profiles set per channel (admin API) and the read-only
queries of the node's books that the admin API, the metrics and the dashboard show.

Nothing here changes a channel or a routing: profiles are operator settings, the rest only
reads what the channel commits wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from ..protocol.types import Address
from . import schema as db
from .base import StoreBase, _now
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

    def routings_since(self, since: datetime, *, limit: int = 100_000) -> list[Routing]:
        """Routed payments created since `since`, oldest first (charts over time)."""
        query = (select(db.routings).where(db.routings.c.created_at >= since)
                 .order_by(db.routings.c.created_at).limit(limit))
        with self._read() as conn:
            return [_routing(row) for row in conn.execute(query)]

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
