"""Group commit for SQLite with `synchronous=FULL`: concurrent writers share one fsync.

An fsync costs a few milliseconds here, against tens of microseconds for the writes
themselves, so committing each write alone caps a store at a few hundred writes a second.
Here every write of the process goes through one connection. A writer takes it, runs its
statements inside a SAVEPOINT of the transaction that is open on it (opening one with BEGIN
IMMEDIATE if there is none), lets go of it and waits. A committer thread COMMITs the open
transaction (one fsync) and wakes every writer in it. While that fsync runs, the writers
that arrive queue for the connection, and they all go into the next transaction: the
busier the store, the more writes share an fsync, and a lone writer waits for one fsync,
as it would alone.

What a writer sees is unchanged: its write has committed durably when it returns, and has
changed nothing when it raised (its savepoint was rolled back; the others' writes go on).
If the COMMIT itself fails, every writer of that transaction gets the error and nothing of
it is stored. Reads go to other connections and see only committed data, except a read
inside a write, which sees that write. Other processes writing the same file take SQLite's
write lock between our transactions, as before (busy_timeout).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

from ..counters import COUNTS
from .errors import CommitFailed, StoreClosed

log = logging.getLogger(__name__)


class _Batch:
    """The writes in one transaction: `done` is held until it committed (or failed:
    `error`). Plain locks, not Events: a Condition costs more than the write itself."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None

    def wait(self) -> None:
        self.done.acquire()  # each waiter takes it and passes it on to the next
        self.done.release()


class GroupCommit:
    def __init__(self, engine: Engine, write_options: dict[str, Any]) -> None:
        self._engine = engine
        self._options = write_options
        self._lock = threading.Lock()  # the write connection, and the fields below
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._batch: _Batch | None = None
        self._wakeups: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._woken = False  # a wakeup is queued and not yet taken (under _lock)
        self._stopping = False
        self._thread = threading.Thread(target=self._commit_loop, name="store-commit",
                                        daemon=True)

    def start(self) -> GroupCommit:
        conn = self._engine.connect()
        conn.execution_options(**self._options)
        self._conn = conn
        self._thread.start()
        return self

    def stop(self) -> None:
        """Commit what is open, stop the committer and close the connection."""
        with self._lock:
            self._stopping = True
        self._wakeups.put(None)
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def write(self, local: threading.local) -> Iterator[Connection]:
        """One atomic write; leaving the block normally waits until it is durable."""
        nested = getattr(local, "conn", None)
        if nested is not None:  # a write inside one of this thread's writes
            with nested.begin_nested():
                yield nested
            return
        with self._lock:
            if self._stopping or self._conn is None:
                raise StoreClosed("the store is closed")
            conn = self._conn
            if self._batch is None:
                self._transaction = conn.begin()  # BEGIN IMMEDIATE: the file's write lock
                self._batch = _Batch()
            batch = self._batch
            local.conn = conn
            # a savepoint per write, on the driver's connection: SQLAlchemy's nested
            # transactions cost more than the write itself here
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute("SAVEPOINT connext_write")
                try:
                    yield conn
                except BaseException:
                    cursor.execute("ROLLBACK TO connext_write")
                    raise
                finally:
                    cursor.execute("RELEASE connext_write")
            finally:
                cursor.close()
                local.conn = None
                if not self._woken:  # even after a write that raised: the transaction ends
                    self._woken = True
                    self._wakeups.put(None)
        batch.wait()
        if batch.error is not None:
            raise CommitFailed(f"the write was not committed: {batch.error}") from batch.error

    def _commit_loop(self) -> None:
        while True:
            self._wakeups.get()
            with self._lock:
                self._woken = False
                batch, transaction = self._batch, self._transaction
                self._batch = self._transaction = None
                stopping = self._stopping
                if transaction is not None:
                    try:
                        transaction.commit()  # one fsync for every write in it
                        COUNTS.db_commits += 1
                    except BaseException as exc:  # every writer in it hears of it
                        log.error("group commit failed: %s", exc)
                        assert batch is not None
                        batch.error = exc
                        try:
                            transaction.rollback()
                        except Exception:
                            log.exception("rollback after a failed commit failed")
            if batch is not None:
                batch.done.release()
            if stopping:
                return
