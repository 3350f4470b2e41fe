"""`ChannelStore`: everything a party must remember, in SQLite or PostgreSQL.

Every method is one short transaction on a pooled connection, so it is safe to call from
several threads (and the asyncio engine's `to_thread`) and from several processes sharing a
database. Channel writes are compare-and-swaps on the stored nonce inside the database,
never read-then-write in Python. The store persists protocol objects faithfully; it never
validates signatures or applies protocol rules, and keeps no state in memory.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from ..counters import COUNTS
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
from .errors import AlreadyExists, NotFound, SchemaError, StaleWrite
from .group import GroupCommit
from .records import (
    Event,
    NewRouting,
    Routing,
    RoutingChange,
    RoutingStatus,
    RoutingStep,
    StoredChannel,
    StoredTransaction,
    StoredTransfer,
    TxSend,
    TxStatus,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another writer's lock before giving up."""
MIGRATION_LOCK_KEY = 0x636F6E6E65787431
"""PostgreSQL advisory lock held while migrating, so concurrent starts migrate once."""
ROUTING_ID_META = "routingId"
_WRITE = "connext_write"
_MIGRATIONS = "connext.store:migrations"


SEEN_MESSAGES_KEPT_MS = 3_600_000
"""Seen message ids are kept an hour (any messaging time window is far shorter)."""

SYNC_LEVELS = ("full", "normal")
"""SQLite's durability per commit. `full`: fsync on every commit, so a committed write
survives power loss and an OS crash; grouped (below) so concurrent writers share one fsync.
`normal` (WAL): a commit survives the process being killed (SIGKILL) but the last commits
before a power loss or OS crash may be lost. The node uses `full` unless told otherwise."""
_MIGRATION_THREAD_LOCK = threading.Lock()
_EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="store")
"""Where `ChannelStore.run` calls block: one pool for the process, wide enough that the
writers of many channels wait for one group commit together."""
T = TypeVar("T")
_KEY_LOOKUPS = frozenset({
    "get_channel", "channel_nonce", "get_pending", "get_transfer", "transfer_record",
    "get_routing", "get_last_block", "get_public_key", "voucher", "get_transaction",
    "transaction_by_hash",
})
"""Reads of one row (or one channel) by key: cheap enough for `run` to do in the loop."""

# Statements of the payment path, built once: building a statement and its cache key costs
# more than running it. Parameters are named p_* (a name of a column is reserved).
_CAS = (
    sql_update(db.channels)
    .where(db.channels.c.channel_address == bindparam("p_address"),
           db.channels.c.nonce == bindparam("p_expected"))
    .values(nonce=bindparam("p_nonce"), state_json=bindparam("p_state"),
            update_json=bindparam("p_update"), updated_at=bindparam("p_now"))
)
"""The compare-and-swap: an UPDATE that only matches the row still at the expected nonce."""
_INSERT_UPDATE = insert(db.channel_updates)
_INSERT_TRANSFER = insert(db.transfers)
_DELETE_PENDING = delete(db.pending_updates).where(
    db.pending_updates.c.channel_address == bindparam("p_address"))
_MARK_RESOLVED = (
    sql_update(db.transfers)
    .where(db.transfers.c.channel_address == bindparam("p_address"),
           db.transfers.c.transfer_id == bindparam("p_transfer_id"),
           db.transfers.c.resolved_nonce.is_(None))
    .values(resolved_nonce=bindparam("p_nonce"), final_balance_json=bindparam("p_balance"),
            resolver=bindparam("p_resolver"), resolve_meta_json=bindparam("p_meta"),
            resolved_at=bindparam("p_now"))
)
_CHANNEL_NONCE = select(db.channels.c.nonce).where(
    db.channels.c.channel_address == bindparam("p_address"))
_TRANSFER_BY_ID = (
    select(db.transfers).where(db.transfers.c.transfer_id == bindparam("p_transfer_id"))
    .order_by(db.transfers.c.id.desc()).limit(1)
)
_TRANSFER_IN_CHANNEL = (
    select(db.transfers).where(db.transfers.c.transfer_id == bindparam("p_transfer_id"),
                               db.transfers.c.channel_address == bindparam("p_address"))
    .order_by(db.transfers.c.id.desc()).limit(1)
)
_ROUTING_BY_ID = select(db.routings).where(db.routings.c.routing_id == bindparam("p_routing_id"))


def sync_level(explicit: str | None = None, *, default: str = "normal") -> str:
    """The SQLite durability to use: `explicit`, else `CONNEXT_SQLITE_SYNC`, else default."""
    level = (explicit or os.environ.get("CONNEXT_SQLITE_SYNC") or default).strip().lower()
    if level not in SYNC_LEVELS:
        raise ValueError(f"CONNEXT_SQLITE_SYNC must be one of {', '.join(SYNC_LEVELS)}, "
                         f"not {level!r}")
    return level


class ChannelStore:
    """A party's persistent state over one database URL. Use `ChannelStore.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen_count = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._group: GroupCommit | None = None
        self._inline_reads = False
        """Set by `open` for SQLite files (an in-memory database is one shared connection)."""
        """Set once migrated, for SQLite files with synchronous=FULL (see group.py)."""
        self._local = threading.local()
        """`conn`: the write connection while this thread is inside a grouped write."""
        # SQLite has one writer per file; when two connections of this process collide, the
        # loser sleeps in SQLite's busy handler (1, 2, 5, 10... ms). Queueing our own writers
        # on a lock instead keeps each write at its real cost.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | URL, *, pool_size: int = 10,
             synchronous: str | None = None) -> ChannelStore:
        """Connect and bring the schema to the head revision (idempotent, safe concurrently).

        `sqlite:///path` (the file's directory is created) or `postgresql+psycopg://...`;
        `postgresql://` and `postgres://` mean psycopg too. `sqlite://` (in memory) is one
        shared connection: for single-threaded tests only, and gone on close.
        `synchronous`: SQLite's durability, `full` or `normal` (see SYNC_LEVELS; default
        from `CONNEXT_SQLITE_SYNC`, else `normal`). With `full` on a file, writes are group
        committed: each still returns only once it is durable.
        """
        parsed = _normalize_url(url)
        level = sync_level(synchronous)
        engine = _create_engine(parsed, pool_size=pool_size, synchronous=level)
        in_memory = parsed.database in (None, "", ":memory:")
        store = cls(engine)
        try:
            store._migrate()
            sqlite_file = parsed.get_backend_name() == "sqlite" and not in_memory
            store._inline_reads = sqlite_file
            if sqlite_file and level == "full":
                store._group = GroupCommit(engine, {_WRITE: True}).start()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection. The store is unusable afterwards."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                if self._group is not None:
                    self._group.stop()
                self._engine.dispose()

    async def run(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call one of this store's methods from the event loop without blocking it long.

        On SQLite, a short lookup by key runs right here (a WAL reader never waits for a
        writer, and the hop to a thread would cost more than the read). Anything else runs
        in a thread of the store's own pool, wide enough that concurrent writes meet in one
        group commit instead of queueing for the few threads of the default executor."""
        if self._inline_reads and getattr(method, "__name__", "") in _KEY_LOOKUPS:
            return method(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXECUTOR, functools.partial(method, *args, **kwargs))

    def __enter__(self) -> ChannelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    def schema_revision(self) -> str | None:
        with self._read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _migrate(self) -> None:
        # alembic's `op` and script loading are process-global: one migration at a time
        with _MIGRATION_THREAD_LOCK:
            self._migrate_locked()

    def _migrate_locked(self) -> None:
        config = Config()
        config.set_main_option("script_location", _MIGRATIONS)
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            current = MigrationContext.configure(conn).get_current_revision()
            if current == head:
                return
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise SchemaError(
                    f"cannot upgrade the database schema from revision {current} to {head}: "
                    f"{exc} (is the database from a newer version of connext?)"
                ) from exc
            log.info("database schema upgraded from %s to %s", current, head)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        COUNTS.db_reads += 1
        inside = getattr(self._local, "conn", None)
        if inside is not None:  # a read within our own grouped write sees that write
            yield inside
            return
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One atomic write: it has committed durably when the `with` block is left
        normally, and has changed nothing when it raised."""
        COUNTS.db_writes += 1
        if self._group is not None:
            with self._group.write(self._local) as conn:
                yield conn
            return
        # SQLite: BEGIN IMMEDIATE takes the write lock up front, so a write transaction that
        # reads first never fails to upgrade its lock (it waits on busy_timeout instead).
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
            COUNTS.db_commits += 1

    @functools.cached_property
    def _upsert_pending(self) -> Any:
        """Insert or replace our proposal in a channel (built once per store's dialect)."""
        upsert = self._insert(db.pending_updates)
        return upsert.on_conflict_do_update(
            index_elements=[db.pending_updates.c.channel_address],
            set_={c: upsert.excluded[c] for c in ("nonce", "update_json", "created_at")},
        )

    def _insert(self, table: Table) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING on both backends."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # --- channels ------------------------------------------------------------------------

    def get_channel(self, channel_address: Address) -> StoredChannel | None:
        """The latest double-signed state, its update, our pending proposal, and the
        transfers active in that state; None for an unknown channel."""
        with self._read() as conn:
            row = conn.execute(
                select(db.channels.c.state_json, db.channels.c.update_json, db.channels.c.nonce)
                .where(db.channels.c.channel_address == channel_address)
            ).one_or_none()
            if row is None:
                return None
            return self._stored_channel(conn, row)

    def channel_nonce(self, channel_address: Address) -> int | None:
        """The stored nonce of a channel (cheap: lets callers validate a cached copy)."""
        with self._read() as conn:
            nonce: int | None = conn.execute(
                _CHANNEL_NONCE, {"p_address": channel_address}).scalar_one_or_none()
            return nonce

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
            return self._stored_channel(conn, row)

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

    def _stored_channel(self, conn: Connection, row: Row[Any]) -> StoredChannel:
        state = state_from_json(json.loads(row.state_json))
        latest = update_from_json(json.loads(row.update_json))
        # Active *at this nonce*: consistent with the state even if a commit lands between
        # the two reads (PostgreSQL's READ COMMITTED gives each statement its own snapshot).
        active = conn.execute(
            select(db.transfers.c.transfer_json)
            .where(
                db.transfers.c.channel_address == state.channel_address,
                db.transfers.c.created_nonce <= row.nonce,
                or_(db.transfers.c.resolved_nonce.is_(None),
                    db.transfers.c.resolved_nonce > row.nonce),
            )
            .order_by(db.transfers.c.created_nonce, db.transfers.c.id)
        )
        by_id: dict[bytes, Transfer] = {}
        for r in active:
            transfer = transfer_from_json(json.loads(r.transfer_json))
            by_id[transfer.transfer_id] = transfer
        pending = conn.execute(
            select(db.pending_updates.c.update_json)
            .where(db.pending_updates.c.channel_address == state.channel_address)
        ).scalar_one_or_none()
        return StoredChannel(
            state=state,
            latest_update=latest,
            pending_update=None if pending is None else update_from_json(json.loads(pending)),
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
    ) -> None:
        """Store a double-signed update and the state it produced, atomically.

        Compare-and-swap: succeeds only if the stored channel is at `expected_nonce` (0: the
        channel must not exist yet, for a setup), else raises `StaleWrite` and changes
        nothing. In the same transaction: appends the update to the history, inserts the
        `created` transfer or marks the `resolved` one (final balance and resolver), clears
        the pending proposal, appends `events` (kind, payload) for this channel and makes
        the `routings` changes (a routed payment's step goes with the update that makes it).
        """
        _check_commit(state, update, created, resolved, expected_nonce)
        now = _now()
        address = state.channel_address
        state_json = _dumps(state_to_json(state))
        update_json = _dumps(update_to_json(update))
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
                written = conn.execute(_CAS, {
                    "p_address": address, "p_expected": expected_nonce, "p_nonce": state.nonce,
                    "p_state": state_json, "p_update": update_json, "p_now": now,
                }).rowcount
            if written != 1:
                raise StaleWrite(
                    f"channel {address} is not at nonce {expected_nonce}: "
                    f"nonce {update.nonce} was not stored"
                )
            conn.execute(_INSERT_UPDATE, {
                "channel_address": address, "nonce": update.nonce, "type": update.type.value,
                "update_json": update_json, "created_at": now,
            })
            if created is not None:
                conn.execute(_INSERT_TRANSFER, _transfer_row(created, now))
            if resolved is not None:
                self._mark_resolved(conn, resolved, update, now)
            conn.execute(_DELETE_PENDING, {"p_address": address})
            for kind, payload in events:
                _append_event(conn, address, kind, payload, now)
            for change in routings:
                if isinstance(change, NewRouting):
                    self._insert_routing(conn, change, now)
                else:
                    _step_routing(conn, change, now)

    def _mark_resolved(self, conn: Connection, resolved: Transfer, update: Update,
                       now: datetime) -> None:
        assert resolved.resolver is not None
        assert isinstance(update.details, ResolveDetails)
        meta = update.details.meta
        done = conn.execute(_MARK_RESOLVED, {
            "p_address": resolved.channel_address,
            "p_transfer_id": hexb(resolved.transfer_id),
            "p_nonce": update.nonce,
            "p_balance": _dumps(transfer_balance_to_json(resolved.balance)),
            "p_resolver": hexb(resolved.resolver),
            "p_meta": _dumps(dict(meta)),
            "p_now": now,
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
        with self._write() as conn:
            stored = conn.execute(_CHANNEL_NONCE,
                                  {"p_address": channel_address}).scalar_one_or_none()
            current = 0 if stored is None else stored
            if update.nonce != current + 1:
                raise StaleWrite(
                    f"channel {channel_address} is at nonce {current}: a proposal for nonce "
                    f"{update.nonce} is stale"
                )
            conn.execute(self._upsert_pending, {
                "channel_address": channel_address, "nonce": update.nonce,
                "update_json": _dumps(update_to_json(update)), "created_at": _now(),
            })

    def get_pending(self, channel_address: Address) -> Update | None:
        with self._read() as conn:
            raw = conn.execute(
                select(db.pending_updates.c.update_json)
                .where(db.pending_updates.c.channel_address == channel_address)
            ).scalar_one_or_none()
        return None if raw is None else update_from_json(json.loads(raw))

    def clear_pending(self, channel_address: Address) -> None:
        with self._write() as conn:
            conn.execute(delete(db.pending_updates)
                         .where(db.pending_updates.c.channel_address == channel_address))

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
        with self._read() as conn:
            if channel_address is None:
                row = conn.execute(_TRANSFER_BY_ID,
                                   {"p_transfer_id": hexb(transfer_id)}).one_or_none()
            else:
                row = conn.execute(_TRANSFER_IN_CHANNEL, {
                    "p_transfer_id": hexb(transfer_id), "p_address": channel_address,
                }).one_or_none()
        return None if row is None else _stored_transfer(row)

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
        record = NewRouting(routing_id, sender_channel, sender_transfer_id, asset_id, amount,
                            recipient, RoutingStatus(status))
        with self._write() as conn:
            if not self._insert_routing(conn, record, _now(), recipient_asset_id=recipient_asset_id,
                                        recipient_amount=recipient_amount):
                raise AlreadyExists(f"routing 0x{routing_id.hex()} is already recorded")
            return _routing(_get_routing_row(conn, routing_id))

    def _insert_routing(self, conn: Connection, record: NewRouting, now: datetime, *,
                        recipient_asset_id: Address | None = None,
                        recipient_amount: int | None = None) -> bool:
        """Insert a routing record; False (nothing written) when its id is known."""
        return conn.execute(self._insert_routing_statement, {
            "routing_id": hexb(record.routing_id), "status": record.status.value,
            "sender_channel": record.sender_channel,
            "sender_transfer_id": hexb(record.sender_transfer_id),
            "asset_id": record.asset_id, "amount": record.amount,
            "recipient": record.recipient, "recipient_asset_id": recipient_asset_id,
            "recipient_amount": recipient_amount, "created_at": now, "updated_at": now,
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
        with self._read() as conn:
            value = conn.execute(
                select(db.public_keys.c.public_key).where(db.public_keys.c.address == address)
            ).scalar_one_or_none()
        return None if value is None else bytes(value)


# --- helpers ---------------------------------------------------------------------------------


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


def _stored_transfer(row: Row[Any]) -> StoredTransfer:
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
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        created_balance=created_balance,
    )


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


def _append_event(
    conn: Connection,
    channel_address: Address | None,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> int:
    key = conn.execute(insert(db.events).values(
        channel_address=channel_address, kind=kind, payload_json=_dumps(dict(payload)),
        created_at=now,
    )).inserted_primary_key
    assert key is not None
    return int(key[0])


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _now() -> datetime:
    return datetime.now(UTC)


# --- engines -----------------------------------------------------------------------------------


def _normalize_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed


def _create_engine(url: URL, *, pool_size: int, synchronous: str = "normal") -> Engine:
    if url.get_backend_name() == "postgresql":
        return _counted(create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                      pool_pre_ping=True))
    if sqlite3.sqlite_version_info < (3, 35):
        raise SchemaError(f"SQLite {sqlite3.sqlite_version} is too old: 3.35 or newer is needed")
    in_memory = url.database in (None, "", ":memory:")
    if not in_memory:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        # an in-memory database lives in one connection: share it (one thread at a time)
        **({"poolclass": StaticPool} if in_memory else {"pool_size": pool_size,
                                                         "max_overflow": pool_size}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transactions away from the driver: BEGIN is emitted by _on_begin below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not in_memory:
                _enable_wal(cursor)
            # NORMAL in WAL mode: every commit survives a process crash (SIGKILL); FULL also
            # survives power loss, at one fsync per commit (a few ms: hence group commit)
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN"
        )

    return _counted(engine)


def _counted(engine: Engine) -> Engine:
    """Every statement sent to the database is counted (connext.counters)."""
    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        COUNTS.db_statements += 1

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent). Switching needs an exclusive lock and SQLite
    does not wait for it on busy_timeout, so concurrent first opens retry here."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            for pragma in ("PRAGMA journal_mode", "PRAGMA journal_mode=WAL"):
                if str(cursor.execute(pragma).fetchone()[0]).lower() == "wal":
                    return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)
