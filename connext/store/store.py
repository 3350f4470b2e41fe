"""`ChannelStore`: everything a party must remember, in SQLite or PostgreSQL.

Every method is one short transaction, safe to call from several threads (`run` calls them
from the event loop) and from several processes sharing a database. The store persists
protocol objects faithfully; it never validates signatures or applies protocol rules, and
keeps no state in memory. What it keeps, by file: base.py (the database, transactions,
migrations), channels.py (states, updates, transfers), routings.py (routed payments),
chain.py (chain transactions, watchers, secrets), events.py (events, vouchers, seen
messages, public keys), operations.py (per-channel collateral profiles, operators' reads);
group.py is SQLite's group commit.
"""

from __future__ import annotations

from .base import (
    MIGRATION_LOCK_KEY,
    SQLITE_BUSY_TIMEOUT_S,
    SYNC_LEVELS,
    _normalize_url,
    sync_level,
)
from .chain import ChainRecords
from .channels import ROUTING_ID_META, ChannelRecords
from .events import SEEN_MESSAGES_KEPT_MS, EventRecords
from .operations import OperationRecords
from .quotes import QuoteRecords

__all__ = [
    "MIGRATION_LOCK_KEY",
    "ROUTING_ID_META",
    "SEEN_MESSAGES_KEPT_MS",
    "SQLITE_BUSY_TIMEOUT_S",
    "SYNC_LEVELS",
    "ChannelStore",
    "_normalize_url",
    "sync_level",
]


class ChannelStore(ChannelRecords, ChainRecords, EventRecords, QuoteRecords,
                   OperationRecords):
    """A party's persistent state over one database URL. Use `ChannelStore.open(url)`."""
