"""The payment path's statements, run on the database driver's own connection.

SQLAlchemy Core costs about 100 us per statement in Python (compiling the cache key, type
processing of every parameter and row, result objects, transaction bookkeeping): more than
SQLite takes to run the statement. The few statements every payment runs are therefore
plain SQL, written once here for both backends, and sent straight to the driver (sqlite3 or
psycopg) inside the transactions the store opens as before: the same atomicity, the same
compare-and-swap, only without the layers in between. psycopg prepares a statement it sees
repeatedly on its own (server-side), and sqlite3 keeps compiled statements per connection.

Values cross as the rest of the store writes them (schema.py): uint256 amounts as decimal
text on SQLite and NUMERIC on PostgreSQL, datetimes in SQLAlchemy's SQLite text format (so
ordered comparisons keep working) or as timezone-aware values on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from ..counters import COUNTS

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class Sql:
    """One statement with `:name` parameters, for sqlite3 (named style) and psycopg
    (`%(name)s`)."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, text: str) -> None:
        if "%" in text:
            raise ValueError("a literal % would need escaping for psycopg")
        self.sqlite = text
        self.postgresql = _NAMED.sub(r"%(\1)s", text)

    def run(self, raw: Any, pg: bool, params: dict[str, Any] | None = None) -> Any:
        """Execute on the driver connection `raw`; the driver's cursor."""
        COUNTS.db_statements += 1
        return raw.execute(self.postgresql if pg else self.sqlite, params or {})


def driver(conn: Connection) -> Any:
    """The driver's connection under a SQLAlchemy connection (in the same transaction)."""
    return conn.connection.driver_connection


def stamp(pg: bool, value: datetime) -> Any:
    """A timezone-aware datetime as the column stores it."""
    if pg:
        return value
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def read_stamp(value: Any) -> datetime | None:
    """A stored datetime back as a timezone-aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_required_stamp(value: Any) -> datetime:
    """`read_stamp` of a NOT NULL column."""
    stamp = read_stamp(value)
    assert stamp is not None
    return stamp


def uint(pg: bool, value: int | None) -> Any:
    """A uint256 as the column stores it (NUMERIC on PostgreSQL, decimal text on SQLite)."""
    if value is None:
        return None
    return value if pg else str(value)
