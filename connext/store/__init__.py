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
from .store import ChannelStore

__all__ = [
    "AlreadyExists",
    "ChannelStore",
    "CommitFailed",
    "Event",
    "NewRouting",
    "NotFound",
    "Routing",
    "RoutingChange",
    "RoutingStatus",
    "RoutingStep",
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
