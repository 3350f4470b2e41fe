"""Channel records: states, updates, pending proposals and transfers. Every channel write
is a compare-and-swap on the stored nonce inside the database, never read-then-write in
Python; a commit stores the update, its transfers, events and routing steps at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    delete,
    insert,
    or_,
    select,
)
from sqlalchemy import update as sql_update

from ..protocol.serialization import (
    hexb,
    state_from_json,
    state_to_json,
    transfer_balance_from_json,
    transfer_balance_to_json,
    transfer_from_json,
    transfer_to_json,
    update_from_json,
    update_to_json,
)
from ..protocol.types import (
    Address,
    ChannelState,
    ResolveDetails,
    Transfer,
    Update,
    UpdateType,
)
from . import schema as db
from .base import _dumps, _now
from .errors import NotFound, StaleWrite
from .events import _append_event
from .fast import Sql, driver, read_required_stamp, read_stamp, stamp
from .records import (
    NewRouting,
    RoutingChange,
    StoredChannel,
    StoredTransfer,
)
from .routings import RoutingRecords, _step_routing

log = logging.getLogger(__name__)

ROUTING_ID_META = "routingId"

# The payment path's statements, on the driver's connection (fast.py).
_CAS = Sql(
    "UPDATE channels SET nonce = :nonce, state_json = :state, update_json = :update, "
    "updated_at = :now WHERE channel_address = :address AND nonce = :expected"
)
"""The compare-and-swap: an UPDATE that only matches the row still at the expected nonce."""
_INSERT_UPDATE = Sql(
    "INSERT INTO channel_updates (channel_address, nonce, type, update_json, created_at) "
    "VALUES (:address, :nonce, :type, :update, :now)"
)
_INSERT_TRANSFER = Sql(
    "INSERT INTO transfers (channel_address, transfer_id, routing_id, transfer_definition, "
    "initiator, responder, asset_id, created_nonce, transfer_json, created_at) VALUES "
    "(:channel_address, :transfer_id, :routing_id, :transfer_definition, :initiator, "
    ":responder, :asset_id, :created_nonce, :transfer_json, :created_at)"
)
_DELETE_PENDING = Sql("DELETE FROM pending_updates WHERE channel_address = :address")
_MARK_RESOLVED = Sql(
    "UPDATE transfers SET resolved_nonce = :nonce, final_balance_json = :balance, "
    "resolver = :resolver, resolve_meta_json = :meta, resolved_at = :now "
    "WHERE channel_address = :address AND transfer_id = :transfer_id "
    "AND resolved_nonce IS NULL"
)
_CHANNEL_NONCE = Sql("SELECT nonce FROM channels WHERE channel_address = :address")
_CHANNEL = Sql(
    "SELECT state_json, update_json, nonce FROM channels WHERE channel_address = :address")
_ACTIVE_TRANSFERS = Sql(
    # active *at this nonce*: consistent with the state even if a commit lands between the
    # two reads (PostgreSQL's READ COMMITTED gives each statement its own snapshot)
    "SELECT transfer_json FROM transfers WHERE channel_address = :address "
    "AND created_nonce <= :nonce AND (resolved_nonce IS NULL OR resolved_nonce > :nonce) "
    "ORDER BY created_nonce, id"
)
_PENDING = Sql("SELECT update_json FROM pending_updates WHERE channel_address = :address")
_UPSERT_PENDING = Sql(
    "INSERT INTO pending_updates (channel_address, nonce, update_json, created_at) "
    "VALUES (:address, :nonce, :update, :now) "
    "ON CONFLICT (channel_address) DO UPDATE SET nonce = excluded.nonce, "
    "update_json = excluded.update_json, created_at = excluded.created_at"
)
"""Insert or replace our proposal in a channel."""
_TRANSFER_COLUMNS = (
    "transfer_json, final_balance_json, resolver, resolve_meta_json, created_nonce, "
    "resolved_nonce, routing_id, created_at, resolved_at"
)
_TRANSFER_BY_ID = Sql(
    f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = :transfer_id "
    "ORDER BY id DESC LIMIT 1"
)
_TRANSFER_IN_CHANNEL = Sql(
    f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = :transfer_id "
    "AND channel_address = :address ORDER BY id DESC LIMIT 1"
)


class ChannelRecords(RoutingRecords):
    """Channels: the latest double-signed state, its history, our pending proposal and
    the transfers, written by compare-and-swap on the stored nonce."""

    # --- channels ------------------------------------------------------------------------

    def get_channel(self, channel_address: Address) -> StoredChannel | None:
        """The latest double-signed state, its update, our pending proposal, and the
        transfers active in that state; None for an unknown channel."""
        with self._raw_read() as raw:
            row = _CHANNEL.run(raw, self._pg, {"address": channel_address}).fetchone()
            if row is None:
                return None
            return self._stored_channel(raw, row)

    def channel_nonce(self, channel_address: Address) -> int | None:
        """The stored nonce of a channel (cheap: lets callers validate a cached copy)."""
        with self._raw_read() as raw:
            row = _CHANNEL_NONCE.run(raw, self._pg, {"address": channel_address}).fetchone()
        return None if row is None else int(row[0])

    def find_channel(self, alice: Address, bob: Address, chain_id: int) -> StoredChannel | None:
        """The channel between these parties on this chain, if any."""
        with self._read() as conn:
            row = conn.execute(
                select(db.channels.c.state_json, db.channels.c.update_json,
                       db.channels.c.nonce)
                .where(db.channels.c.alice == alice, db.channels.c.bob == bob,
                       db.channels.c.chain_id == chain_id)
            ).one_or_none()
            if row is None:
                return None
            return self._stored_channel(driver(conn), tuple(row))

    def list_channels(self, *, party: Address | None = None,
                      idle_since: datetime | None = None) -> list[ChannelState]:
        """Every channel's latest state (optionally only those `party` is in, and only
        those without an update since `idle_since`), oldest first."""
        query = select(db.channels.c.state_json).order_by(db.channels.c.created_at,
                                                       db.channels.c.channel_address)
        if party is not None:
            query = query.where(or_(db.channels.c.alice == party, db.channels.c.bob == party))
        if idle_since is not None:
            query = query.where(db.channels.c.updated_at < idle_since)
        with self._read() as conn:
            return [state_from_json(json.loads(r.state_json)) for r in conn.execute(query)]

    def _stored_channel(self, raw: Any, row: Sequence[Any]) -> StoredChannel:
        """The channel of a (state_json, update_json, nonce) row, read on the driver
        connection `raw` (in the same snapshot)."""
        state_json, update_json, nonce = row
        state = state_from_json(json.loads(state_json))
        latest = update_from_json(json.loads(update_json))
        by_id: dict[bytes, Transfer] = {}
        for (transfer_json,) in _ACTIVE_TRANSFERS.run(raw, self._pg, {
                "address": state.channel_address, "nonce": nonce}).fetchall():
            transfer = transfer_from_json(json.loads(transfer_json))
            by_id[transfer.transfer_id] = transfer
        pending = _PENDING.run(raw, self._pg, {"address": state.channel_address}).fetchone()
        return StoredChannel(
            state=state,
            latest_update=latest,
            pending_update=None if pending is None
            else update_from_json(json.loads(pending[0])),
            transfers=by_id,
        )

    def commit_update(
        self,
        state: ChannelState,
        update: Update,
        *,
        created: Transfer | None = None,
        resolved: Transfer | None = None,
        expected_nonce: int,
        events: Sequence[tuple[str, Mapping[str, Any]]] = (),
        routings: Sequence[RoutingChange] = (),
        next_pending: Update | None = None,
    ) -> None:
        """Store a double-signed update and the state it produced, atomically.

        Compare-and-swap: succeeds only if the stored channel is at `expected_nonce` (0: the
        channel must not exist yet, for a setup), else raises `StaleWrite` and changes
        nothing. In the same transaction: appends the update to the history, inserts the
        `created` transfer or marks the `resolved` one (final balance and resolver), clears
        the pending proposal, appends `events` (kind, payload) for this channel and makes
        the `routings` changes (a routed payment's step goes with the update that makes it).
        `next_pending`: our own proposal built on this state, stored as the pending one in
        the same transaction (write-ahead before it goes out with our reply).
        """
        _check_commit(state, update, created, resolved, expected_nonce)
        if next_pending is not None and (next_pending.channel_address != state.channel_address
                                         or next_pending.nonce != state.nonce + 1):
            raise ValueError("the next proposal must build on the committed state")
        now = _now()
        address = state.channel_address
        state_json = _dumps(state_to_json(state))
        update_json = _dumps(update_to_json(update))
        pg = self._pg
        with self._write() as conn:
            if expected_nonce == 0:
                # INSERT's rowcount is unreliable (psycopg says -1): count RETURNING rows
                written = len(conn.execute(
                    self._insert(db.channels)
                    .values(
                        channel_address=address,
                        alice=state.alice,
                        bob=state.bob,
                        chain_id=state.network.chain_id,
                        nonce=state.nonce,
                        state_json=state_json,
                        update_json=update_json,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(db.channels.c.nonce)
                ).all())
            else:
                written = _CAS.run(driver(conn), pg, {
                    "address": address, "expected": expected_nonce, "nonce": state.nonce,
                    "state": state_json, "update": update_json, "now": stamp(pg, now),
                }).rowcount
            if written != 1:
                raise StaleWrite(
                    f"channel {address} is not at nonce {expected_nonce}: "
                    f"nonce {update.nonce} was not stored"
                )
            raw = driver(conn)
            _INSERT_UPDATE.run(raw, pg, {
                "address": address, "nonce": update.nonce, "type": update.type.value,
                "update": update_json, "now": stamp(pg, now),
            })
            if created is not None:
                row = _transfer_row(created, now)
                row["created_at"] = stamp(pg, now)
                _INSERT_TRANSFER.run(raw, pg, row)
            if resolved is not None:
                self._mark_resolved(raw, resolved, update, now)
            if next_pending is None:
                _DELETE_PENDING.run(raw, pg, {"address": address})
            else:
                _UPSERT_PENDING.run(raw, pg, {
                    "address": address, "nonce": next_pending.nonce,
                    "update": _dumps(update_to_json(next_pending)), "now": stamp(pg, now),
                })
            for kind, payload in events:
                _append_event(conn, address, kind, payload, now)
            for change in routings:
                if isinstance(change, NewRouting):
                    self._insert_routing(conn, change, now)
                else:
                    _step_routing(conn, change, now)

    def _mark_resolved(self, raw: Any, resolved: Transfer, update: Update,
                       now: datetime) -> None:
        assert resolved.resolver is not None
        assert isinstance(update.details, ResolveDetails)
        meta = update.details.meta
        done = _MARK_RESOLVED.run(raw, self._pg, {
            "address": resolved.channel_address,
            "transfer_id": hexb(resolved.transfer_id),
            "nonce": update.nonce,
            "balance": _dumps(transfer_balance_to_json(resolved.balance)),
            "resolver": hexb(resolved.resolver),
            "meta": _dumps(dict(meta)),
            "now": stamp(self._pg, now),
        }).rowcount
        if done != 1:
            raise NotFound(
                f"no active transfer 0x{resolved.transfer_id.hex()} in channel "
                f"{resolved.channel_address} to resolve"
            )

    def restore_channel(
        self,
        state: ChannelState,
        update: Update,
        active: Iterable[Transfer],
        *,
        events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """Replace our copy of a channel by a verified double-signed state (restore).

        Never goes backwards: raises `StaleWrite` if we already store a higher nonce. Stored
        transfers that are not in `active` any more are marked resolved at the restored
        nonce (their resolver is unknown to us); `active` ones we lack are inserted.
        """
        if update.channel_address != state.channel_address or update.nonce != state.nonce:
            raise ValueError("the update must be the one that produced the restored state")
        if not update.double_signed:
            raise ValueError("only a double-signed state can be restored")
        active = list(active)
        if any(t.channel_address != state.channel_address for t in active):
            raise ValueError("a restored transfer belongs to another channel")
        now = _now()
        address = state.channel_address
        state_json = _dumps(state_to_json(state))
        update_json = _dumps(update_to_json(update))
        with self._write() as conn:
            conn.execute(
                self._insert(db.channels)
                .values(
                    channel_address=address, alice=state.alice, bob=state.bob,
                    chain_id=state.network.chain_id, nonce=0, state_json=state_json,
                    update_json=update_json, created_at=now, updated_at=now,
                )
                .on_conflict_do_nothing()
            )
            written = conn.execute(
                sql_update(db.channels)
                .where(db.channels.c.channel_address == address, db.channels.c.nonce <= state.nonce)
                .values(nonce=state.nonce, state_json=state_json, update_json=update_json,
                        updated_at=now)
            ).rowcount
            if written != 1:
                raise StaleWrite(f"channel {address} is already past nonce {state.nonce}")
            conn.execute(
                self._insert(db.channel_updates)
                .values(channel_address=address, nonce=update.nonce, type=update.type.value,
                        update_json=update_json, created_at=now)
                .on_conflict_do_nothing()
            )
            keep = {hexb(t.transfer_id) for t in active}
            stored_active = {
                r.transfer_id: r.id for r in conn.execute(
                    select(db.transfers.c.id, db.transfers.c.transfer_id).where(
                        db.transfers.c.channel_address == address,
                        db.transfers.c.resolved_nonce.is_(None),
                    )
                )
            }
            gone = [row_id for tid, row_id in stored_active.items() if tid not in keep]
            if gone:
                conn.execute(sql_update(db.transfers).where(db.transfers.c.id.in_(gone))
                             .values(resolved_nonce=state.nonce, resolved_at=now))
            for transfer in active:
                if hexb(transfer.transfer_id) not in stored_active:
                    conn.execute(insert(db.transfers).values(_transfer_row(transfer, now)))
            conn.execute(delete(db.pending_updates)
                         .where(db.pending_updates.c.channel_address == address))
            for kind, payload in events:
                _append_event(conn, address, kind, payload, now)

    def save_pending(self, channel_address: Address, update: Update) -> None:
        """Persist our own proposal for the next nonce before sending it (write-ahead).

        Replaces an earlier proposal; raises `StaleWrite` unless `update.nonce` is the
        stored nonce + 1 (1 for a channel not stored yet).
        """
        if update.channel_address != channel_address:
            raise ValueError("the update is for another channel")
        update_json = _dumps(update_to_json(update))
        pg = self._pg
        with self._write() as conn:
            raw = driver(conn)
            stored = _CHANNEL_NONCE.run(raw, pg, {"address": channel_address}).fetchone()
            current = 0 if stored is None else int(stored[0])
            if update.nonce != current + 1:
                raise StaleWrite(
                    f"channel {channel_address} is at nonce {current}: a proposal for nonce "
                    f"{update.nonce} is stale"
                )
            _UPSERT_PENDING.run(raw, pg, {
                "address": channel_address, "nonce": update.nonce,
                "update": update_json, "now": stamp(pg, _now()),
            })

    def get_pending(self, channel_address: Address) -> Update | None:
        with self._raw_read() as raw:
            row = _PENDING.run(raw, self._pg, {"address": channel_address}).fetchone()
        return None if row is None else update_from_json(json.loads(row[0]))

    def clear_pending(self, channel_address: Address) -> None:
        with self._write() as conn:
            _DELETE_PENDING.run(driver(conn), self._pg, {"address": channel_address})

    def update_history(
        self, channel_address: Address, *, since_nonce: int = 0, limit: int | None = None
    ) -> list[Update]:
        """Double-signed updates with nonce > `since_nonce`, in nonce order."""
        query = (
            select(db.channel_updates.c.update_json)
            .where(db.channel_updates.c.channel_address == channel_address,
                   db.channel_updates.c.nonce > since_nonce)
            .order_by(db.channel_updates.c.nonce)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [update_from_json(json.loads(raw)) for raw in conn.scalars(query)]

    # --- transfers -----------------------------------------------------------------------

    def get_transfer(
        self, transfer_id: bytes, *, channel_address: Address | None = None
    ) -> Transfer | None:
        """The transfer (final balance and resolver set once resolved), or None.

        Ids are unique in practice; should one recur, the most recently created wins.
        """
        record = self.transfer_record(transfer_id, channel_address=channel_address)
        return None if record is None else record.transfer

    def transfer_record(
        self, transfer_id: bytes, *, channel_address: Address | None = None
    ) -> StoredTransfer | None:
        """The transfer with its lifecycle (active or resolved at which nonce), or None."""
        with self._raw_read() as raw:
            if channel_address is None:
                row = _TRANSFER_BY_ID.run(raw, self._pg,
                                          {"transfer_id": hexb(transfer_id)}).fetchone()
            else:
                row = _TRANSFER_IN_CHANNEL.run(raw, self._pg, {
                    "transfer_id": hexb(transfer_id), "address": channel_address,
                }).fetchone()
        return None if row is None else _stored_transfer(_TransferRow(*row))

    def transfers(
        self, channel_address: Address, *, active: bool | None = None
    ) -> list[StoredTransfer]:
        """A channel's transfers in creation order: all, only active, or only resolved."""
        query = (
            select(db.transfers)
            .where(db.transfers.c.channel_address == channel_address)
            .order_by(db.transfers.c.created_nonce, db.transfers.c.id)
        )
        if active is True:
            query = query.where(db.transfers.c.resolved_nonce.is_(None))
        elif active is False:
            query = query.where(db.transfers.c.resolved_nonce.is_not(None))
        with self._read() as conn:
            return [_stored_transfer(row) for row in conn.execute(query)]

    def transfers_of(self, definition: Address, party: Address, *, active: bool,
                     resolved_since: datetime | None = None) -> list[StoredTransfer]:
        """Transfers under `definition` that `party` initiated or answers: the active
        ones, or those resolved since `resolved_since` (oldest first)."""
        query = (
            select(db.transfers)
            .where(db.transfers.c.transfer_definition == definition,
                   or_(db.transfers.c.initiator == party, db.transfers.c.responder == party))
            .order_by(db.transfers.c.id)
        )
        if active:
            query = query.where(db.transfers.c.resolved_nonce.is_(None))
        else:
            query = query.where(db.transfers.c.resolved_nonce.is_not(None))
            if resolved_since is not None:
                query = query.where(db.transfers.c.resolved_at >= resolved_since)
        with self._read() as conn:
            return [_stored_transfer(row) for row in conn.execute(query)]

    def pending_channels(self) -> list[Address]:
        """Channels in which we have a proposal of our own whose fate we do not know."""
        with self._read() as conn:
            return list(conn.scalars(select(db.pending_updates.c.channel_address)))

    def transfers_by_routing_id(self, routing_id: bytes) -> list[Transfer]:
        """Every stored transfer whose create meta names this routing id (both hops)."""
        query = (
            select(db.transfers)
            .where(db.transfers.c.routing_id == hexb(routing_id))
            .order_by(db.transfers.c.id)
        )
        with self._read() as conn:
            return [_stored_transfer(row).transfer for row in conn.execute(query)]


def _check_commit(
    state: ChannelState,
    update: Update,
    created: Transfer | None,
    resolved: Transfer | None,
    expected_nonce: int,
) -> None:
    """Catch caller bugs before they become a corrupt store (ValueError, nothing written)."""
    if update.channel_address != state.channel_address:
        raise ValueError("the update is for another channel than the state")
    if not update.nonce == state.nonce == expected_nonce + 1:
        raise ValueError(
            f"update nonce {update.nonce} and state nonce {state.nonce} must both be "
            f"expected_nonce + 1 = {expected_nonce + 1}"
        )
    if (update.type is UpdateType.SETUP) != (expected_nonce == 0):
        raise ValueError("a setup (and only a setup) is committed with expected_nonce=0")
    if not update.double_signed:
        raise ValueError("only a double-signed update can be committed")
    if (created is not None) != (update.type is UpdateType.CREATE):
        raise ValueError("a create update (and only one) comes with its created transfer")
    if (resolved is not None) != (update.type is UpdateType.RESOLVE):
        raise ValueError("a resolve update (and only one) comes with its resolved transfer")
    for transfer in (created, resolved):
        if transfer is None:
            continue
        if transfer.channel_address != state.channel_address:
            raise ValueError("the transfer belongs to another channel")
        if transfer.transfer_id != getattr(update.details, "transfer_id", None):
            raise ValueError("the transfer is not the one the update names")
    if resolved is not None and resolved.resolver is None:
        raise ValueError("a resolved transfer carries its resolver")


def _transfer_row(transfer: Transfer, now: datetime) -> dict[str, Any]:
    return {
        "channel_address": transfer.channel_address,
        "transfer_id": hexb(transfer.transfer_id),
        "routing_id": _routing_id_from_meta(transfer.meta),
        "transfer_definition": transfer.transfer_definition,
        "initiator": transfer.initiator,
        "responder": transfer.responder,
        "asset_id": transfer.asset_id,
        "created_nonce": transfer.channel_nonce,
        # always stored as created: the resolution lives in its own columns
        "transfer_json": _dumps(transfer_to_json(replace(transfer, resolver=None))),
        "created_at": now,
    }


def _routing_id_from_meta(meta: Mapping[str, Any]) -> str | None:
    value = meta.get(ROUTING_ID_META)
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        return None
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return None
    return value.lower()


class _TransferRow(NamedTuple):
    """The columns of `_TRANSFER_COLUMNS`, as a driver returns them."""

    transfer_json: str
    final_balance_json: str | None
    resolver: str | None
    resolve_meta_json: str | None
    created_nonce: int
    resolved_nonce: int | None
    routing_id: str | None
    created_at: Any
    resolved_at: Any


def _stored_transfer(row: Row[Any] | _TransferRow) -> StoredTransfer:
    transfer = transfer_from_json(json.loads(row.transfer_json))
    created_balance = transfer.balance
    if row.final_balance_json is not None:
        transfer = replace(transfer,
                           balance=transfer_balance_from_json(json.loads(row.final_balance_json)))
    if row.resolver is not None:
        transfer = replace(transfer, resolver=bytes.fromhex(row.resolver[2:]))
    resolve_meta = None if row.resolve_meta_json is None else json.loads(row.resolve_meta_json)
    if resolve_meta:  # as the protocol hands a resolved transfer: create meta + resolve meta
        transfer = replace(transfer, meta={**transfer.meta, **resolve_meta})
    return StoredTransfer(
        transfer=transfer,
        created_nonce=row.created_nonce,
        resolved_nonce=row.resolved_nonce,
        routing_id=None if row.routing_id is None else bytes.fromhex(row.routing_id[2:]),
        resolve_meta=resolve_meta,
        created_at=read_required_stamp(row.created_at),
        resolved_at=read_stamp(row.resolved_at),
        created_balance=created_balance,
    )
