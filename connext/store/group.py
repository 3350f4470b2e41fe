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

The event loop's writes (`submit`) skip the thread hops: the committer thread itself runs
each queued write in a savepoint of the open transaction, then commits them all, and only
then completes their futures. A writer on another thread (`write`) takes the connection
under the lock as before.

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
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

from ..counters import COUNTS
from .errors import CommitFailed, StoreClosed

log = logging.getLogger(__name__)


class _Batch:
    """The writes in one transaction: `done` is held until it committed (or failed:
    `error`). Plain locks, not Events: a Condition costs more than the write itself."""

    __slots__ = ("done", "error", "written")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None
        self.written = False  # a write ran in it (a job may refuse before writing anything)

    def wait(self) -> None:
        self.done.acquire()  # each waiter takes it and passes it on to the next
        self.done.release()


class GroupCommit:
    def __init__(self, engine: Engine, write_options: dict[str, Any],
                 local: threading.local) -> None:
        self._engine = engine
        self._local = local  # the store's: a job's own reads and writes find the connection
        self._options = write_options
        self._lock = threading.Lock()  # the write connection, and the fields below
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._batch: _Batch | None = None
        self._wakeups: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        """None: commit what is open; a job: run it in the next transaction, then commit."""
        self._woken = False  # a wakeup is queued and not yet taken (under _lock)
        self._stopping = False
        self._submit_lock = threading.Lock()
        self._closing = False  # under _submit_lock: no job is queued after the last one run
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
        with self._submit_lock:
            self._closing = True
        with self._lock:
            self._stopping = True
        self._wakeups.put(None)
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` (a store method that writes) on the committer thread inside one savepoint
        of the next transaction; its future completes once that transaction is durable (or
        with what `fn` raised, having changed nothing)."""
        job = _Job(fn)
        with self._submit_lock:  # not the connection's lock: that waits out an fsync
            if self._closing:
                raise StoreClosed("the store is closed")
            self._wakeups.put(job)
        return job.future

    @contextmanager
    def write(self, local: threading.local) -> Iterator[Connection]:
        """One atomic write; leaving the block normally waits until it is durable."""
        nested = getattr(local, "conn", None)
        if nested is not None:  # a write inside one of this thread's writes
            if getattr(local, "in_job", False):  # the job's own savepoint covers it
                if self._batch is not None:
                    self._batch.written = True
                COUNTS.db_writes += 1
                yield nested
                return
            COUNTS.db_writes += 1
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
            batch.written = True
            COUNTS.db_writes += 1
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
        local = self._local
        while True:
            item = self._wakeups.get()
            jobs: list[_Job] = []
            with self._lock:
                while True:  # every job queued now goes into this transaction
                    if item is not None:
                        if self._stopping or self._conn is None:
                            item.future.set_exception(StoreClosed("the store is closed"))
                        else:
                            self._run_job(item, local)
                            jobs.append(item)
                    try:
                        item = self._wakeups.get_nowait()
                    except queue.Empty:
                        break
                self._woken = False
                batch, transaction = self._batch, self._transaction
                self._batch = self._transaction = None
                stopping = self._stopping
                error: BaseException | None = None
                if transaction is not None:
                    try:
                        transaction.commit()  # one fsync for every write in it
                        if batch is not None and batch.written:
                            COUNTS.db_commits += 1  # an fsync (nothing written: none)
                    except BaseException as exc:  # every writer in it hears of it
                        log.error("group commit failed: %s", exc)
                        assert batch is not None
                        batch.error = error = exc
                        try:
                            transaction.rollback()
                        except Exception:
                            log.exception("rollback after a failed commit failed")
            for job in jobs:
                job.finish(error)
            if batch is not None:
                batch.done.release()
            if stopping:
                while True:  # refuse what arrived while stopping
                    try:
                        late = self._wakeups.get_nowait()
                    except queue.Empty:
                        return
                    if late is not None:
                        late.future.set_exception(StoreClosed("the store is closed"))

    def _run_job(self, job: _Job, local: threading.local) -> None:
        """Run a job in a savepoint of the open transaction (under the lock)."""
        conn = self._conn
        assert conn is not None
        if self._batch is None:
            self._transaction = conn.begin()
            self._batch = _Batch()
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        local.conn, local.in_job = conn, True
        try:
            cursor.execute("SAVEPOINT connext_write")
            try:
                job.result = job.fn()
            except BaseException as exc:
                cursor.execute("ROLLBACK TO connext_write")
                job.raised = exc
            finally:
                cursor.execute("RELEASE connext_write")
        except BaseException as exc:  # the savepoint itself failed
            job.raised = exc
        finally:
            cursor.close()
            local.conn, local.in_job = None, False


class _Job:
    """A write run on the committer thread: what it returned or raised, and its future."""

    __slots__ = ("fn", "future", "raised", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()
        self.result: Any = None
        self.raised: BaseException | None = None

    def finish(self, commit_error: BaseException | None) -> None:
        if self.raised is not None:
            self.future.set_exception(self.raised)
        elif commit_error is not None:
            self.future.set_exception(
                CommitFailed(f"the write was not committed: {commit_error}"))
        else:
            self.future.set_result(self.result)
