"""Typed errors of the persistence layer.

Callers branch on these (a `StaleWrite` means "someone else moved the channel first: reload
and retry"); they never carry SQL or driver objects, only a readable message.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    code = "store_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleWrite(StoreError):
    """A compare-and-swap lost: the row is not in the state the write was built on."""

    code = "stale_write"


class NotFound(StoreError):
    """The record a write or lookup names does not exist."""

    code = "not_found"


class AlreadyExists(StoreError):
    """A create collides with a record that is already stored."""

    code = "already_exists"


class SchemaError(StoreError):
    """The database schema cannot be brought to this version's head revision."""

    code = "schema_error"


class StoreClosed(StoreError):
    """The store was closed: nothing more can be written through it."""

    code = "store_closed"


class CommitFailed(StoreError):
    """The database refused to commit a write (disk full, I/O error): nothing of it is
    stored."""

    code = "commit_failed"
