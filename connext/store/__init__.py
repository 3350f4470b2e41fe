"""Persistence: `ChannelStore` over SQLite (default, WAL) or PostgreSQL, schema by Alembic.

Everything a party must remember across restarts lives here: channel states and their
history, transfers, routing records, chain transactions, watcher progress and the event
log. Nothing else in the codebase talks SQL, and nothing here applies protocol rules.
"""

from .errors import (
    AlreadyExists,
    CommitFailed,
    NotFound,
    SchemaError,
    StaleWrite,
    StoreClosed,
    StoreError,
)
from .records import (
    Event,
    Routing,
    RoutingStatus,
    StoredChannel,
    StoredTransaction,
    StoredTransfer,
    TxSend,
    TxStatus,
)
from .store import ChannelStore

__all__ = [
    "AlreadyExists",
    "ChannelStore",
    "CommitFailed",
    "Event",
    "NotFound",
    "Routing",
    "RoutingStatus",
    "SchemaError",
    "StaleWrite",
    "StoreClosed",
    "StoreError",
    "StoredChannel",
    "StoredTransaction",
    "StoredTransfer",
    "TxSend",
    "TxStatus",
]
