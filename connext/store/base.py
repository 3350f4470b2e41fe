"""The store's base: its database engine (SQLite in WAL mode or PostgreSQL), migrations,
read and write transactions (group committed on SQLite with synchronous=FULL, group.py),
and `run` for the event loop. The kinds of records are in channels.py, routings.py,
chain.py and events.py; `ChannelStore` (store.py) is all of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from ..counters import COUNTS
from ..protocol.serialization import compact_json
from .errors import SchemaError, StoreClosed
from .fast import driver
from .group import GroupCommit

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another writer's lock before giving up."""
MIGRATION_LOCK_KEY = 0x636F6E6E65787431
"""PostgreSQL advisory lock held while migrating, so concurrent starts migrate once."""

_WRITE = "connext_write"
_MIGRATIONS = "connext.store:migrations"

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
_LOOP_WRITES = frozenset({
    "commit_update", "save_pending", "clear_pending", "record_routing", "create_routing",
    "update_routing_status", "claim_routing", "set_public_key", "append_event",
    "remember_message", "save_voucher",
})
"""Short writes that `run` hands to the group committer's own thread (group.py `submit`):
one hop there and one back, shared by every write of the transaction. Without group commit
(a SQLite file at synchronous=NORMAL: a commit there is a write to the WAL, no fsync)
`run` does them right in the event loop: the hop to a thread and back would cost more."""

def sync_level(explicit: str | None = None, *, default: str = "normal") -> str:
    """The SQLite durability to use: `explicit`, else `CONNEXT_SQLITE_SYNC`, else default."""
    level = (explicit or os.environ.get("CONNEXT_SQLITE_SYNC") or default).strip().lower()
    if level not in SYNC_LEVELS:
        raise ValueError(f"CONNEXT_SQLITE_SYNC must be one of {', '.join(SYNC_LEVELS)}, "
                         f"not {level!r}")
    return level


class StoreBase:
    """A store's connection to its database, its transactions and its life cycle; the
    record kinds (channels.py, routings.py, chain.py, events.py) build on it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen_count = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._group: GroupCommit | None = None
        """Set once migrated, for SQLite files with synchronous=FULL (see group.py)."""
        self._inline_reads = False
        """Set by `open` for SQLite files (an in-memory database is one shared connection)."""
        self._inline_writes = False
        """Set by `open` for SQLite files at synchronous=NORMAL (no fsync per commit)."""
        self._writer: Connection | None = None
        """SQLite files without group commit: the one connection every write uses (under
        `_write_lock`), kept open: a checkout from the pool and its reset on return cost
        more than a short write."""
        self._local = threading.local()
        """`conn`: the write connection while this thread is inside a grouped write;
        `reader`: this thread's own read connection to a SQLite file (`_raw_read`)."""
        self._pg = engine.dialect.name == "postgresql"
        self._readers: list[sqlite3.Connection] = []
        # SQLite has one writer per file; when two connections of this process collide, the
        # loser sleeps in SQLite's busy handler (1, 2, 5, 10... ms). Queueing our own writers
        # on a lock instead keeps each write at its real cost.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | URL, *, pool_size: int = 10,
             synchronous: str | None = None) -> Self:
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
                store._group = GroupCommit(engine, {_WRITE: True}, store._local).start()
            store._inline_writes = sqlite_file and level == "normal"
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
                for reader in self._readers:
                    reader.close()
                self._readers.clear()
                with self._write_lock:
                    if self._writer is not None:
                        self._writer.close()
                        self._writer = None
                self._engine.dispose()

    async def run(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call one of this store's methods from the event loop without blocking it long.

        On SQLite, a short lookup by key runs right here (a WAL reader never waits for a
        writer, and the hop to a thread would cost more than the read). Anything else runs
        in a thread of the store's own pool, wide enough that concurrent writes meet in one
        group commit instead of queueing for the few threads of the default executor; the
        payment path's short writes go to the group committer's thread instead (at
        synchronous=NORMAL, where a commit does not wait for the disk, they run here)."""
        name = getattr(method, "__name__", "")
        if self._inline_reads and name in _KEY_LOOKUPS:
            return method(*args, **kwargs)
        if name in _LOOP_WRITES:
            if self._group is not None:
                return await asyncio.wrap_future(
                    self._group.submit(functools.partial(method, *args, **kwargs)))
            if self._inline_writes:
                return method(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXECUTOR, functools.partial(method, *args, **kwargs))

    def __enter__(self) -> Self:
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
    def _raw_read(self) -> Iterator[Any]:
        """A read transaction on the driver's connection (fast.py): a snapshot for several
        statements. On a SQLite file, each thread keeps a connection of its own for it."""
        COUNTS.db_reads += 1
        inside = getattr(self._local, "conn", None)
        if inside is not None:  # a read within our own grouped write sees that write
            yield driver(inside)
            return
        if not self._inline_reads:
            with self._engine.connect() as conn, conn.begin():
                yield driver(conn)
            return
        raw = self._reader()
        raw.execute("BEGIN")
        COUNTS.db_statements += 2
        try:
            yield raw
        finally:
            raw.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        raw: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if raw is None:
            if self._closed:
                raise StoreClosed("the store is closed")
            database = self._engine.url.database
            assert database is not None
            raw = sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_S,
                                  isolation_level=None, check_same_thread=False)
            raw.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            with self._close_lock:
                if self._closed:
                    raw.close()
                    raise StoreClosed("the store is closed")
                self._readers.append(raw)
            self._local.reader = raw
        return raw

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One atomic write: it has committed durably when the `with` block is left
        normally, and has changed nothing when it raised."""
        if self._group is not None:  # counts the write under its lock (threads race on +=)
            with self._group.write(self._local) as conn:
                yield conn
            return
        # SQLite: BEGIN IMMEDIATE takes the write lock up front, so a write transaction that
        # reads first never fails to upgrade its lock (it waits on busy_timeout instead).
        with self._write_lock, self._write_connection() as conn:
            COUNTS.db_writes += 1
            with conn.begin():
                yield conn
            COUNTS.db_commits += 1

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """The connection a write without group commit uses (under `_write_lock`): the one
        kept open on a SQLite file at synchronous=NORMAL, else one from the pool."""
        if not self._inline_writes:
            with self._engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                yield conn
            return
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._writer is None:
            self._writer = self._engine.connect()
            self._writer.execution_options(**{_WRITE: True})
        conn = self._writer
        try:
            yield conn
        except BaseException:
            if conn.invalidated or conn.closed:  # broken: the next write reconnects
                self._writer = None
            raise

    def _insert(self, table: Table) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING on both backends."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def _dumps(data: Mapping[str, Any]) -> str:
    return compact_json(data).decode()


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
        COUNTS.db_statements += 1
        driver(conn).execute(  # on the driver: SQLAlchemy's execute costs more than BEGIN
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
