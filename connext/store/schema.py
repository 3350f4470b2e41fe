"""The database schema as SQLAlchemy Core tables: what the store queries against.

The tables are created and changed only by the Alembic migrations in `migrations/`; a test
checks that the migrated database matches this metadata exactly. Never call
`metadata.create_all` outside that test: a schema not made by a migration cannot be upgraded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Uint256(TypeDecorator[int]):
    """An unsigned 256-bit integer: NUMERIC(78, 0) on PostgreSQL, decimal text on SQLite.

    SQLite would turn a NUMERIC above 2**63 into a lossy float, so it gets the decimal
    string instead. Values are compared for equality only, never ordered, in SQL.
    """

    impl = String(78)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(78))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
            raise ValueError(f"not a uint256: {value!r}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

ADDRESS = 42  # "0x" + 40 hex digits, checksummed
HASH = 66  # "0x" + 64 hex digits, lowercase: transfer ids, routing ids, tx hashes


channels = Table(
    "channels",
    metadata,
    Column("channel_address", String(ADDRESS), primary_key=True),
    Column("alice", String(ADDRESS), nullable=False, index=True),
    Column("bob", String(ADDRESS), nullable=False, index=True),
    Column("chain_id", Uint256(), nullable=False),
    Column("nonce", BigInteger(), nullable=False),
    Column("state_json", Text(), nullable=False),
    Column("update_json", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("alice", "bob", "chain_id", name="uq_channels_parties"),
)
"""The latest double-signed state of each channel and the update that produced it."""

pending_updates = Table(
    "pending_updates",
    metadata,
    # no foreign key: a setup proposal is pending before its channel row exists
    Column("channel_address", String(ADDRESS), primary_key=True),
    Column("nonce", BigInteger(), nullable=False),
    Column("update_json", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""Our own single-signed proposal per channel (write-ahead: stored before it is sent)."""

channel_updates = Table(
    "channel_updates",
    metadata,
    Column(
        "channel_address",
        String(ADDRESS),
        ForeignKey("channels.channel_address", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nonce", BigInteger(), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("update_json", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""Every double-signed update, by channel and nonce."""

transfers = Table(
    "transfers",
    metadata,
    # a surrogate key: the protocol only forbids reusing the id of an *active* transfer
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "channel_address",
        String(ADDRESS),
        ForeignKey("channels.channel_address", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("transfer_id", String(HASH), nullable=False, index=True),
    Column("routing_id", String(HASH), nullable=True, index=True),
    Column("transfer_definition", String(ADDRESS), nullable=False),
    Column("initiator", String(ADDRESS), nullable=False),
    Column("responder", String(ADDRESS), nullable=False),
    Column("asset_id", String(ADDRESS), nullable=False),
    Column("created_nonce", BigInteger(), nullable=False),
    Column("resolved_nonce", BigInteger(), nullable=True),
    Column("transfer_json", Text(), nullable=False),
    Column("final_balance_json", Text(), nullable=True),
    Column("resolver", Text(), nullable=True),
    Column("resolve_meta_json", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    UniqueConstraint("channel_address", "transfer_id", "created_nonce",
                     name="uq_transfers_channel_transfer_nonce"),
    Index("ix_transfers_channel_active", "channel_address", "resolved_nonce"),
    Index("ix_transfers_definition_active", "transfer_definition", "resolved_nonce"),
)
"""Transfers, active (resolved_nonce is NULL) and resolved, with their meta."""

routings = Table(
    "routings",
    metadata,
    Column("routing_id", String(HASH), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("sender_channel", String(ADDRESS), nullable=False, index=True),
    Column("sender_transfer_id", String(HASH), nullable=False),
    Column("asset_id", String(ADDRESS), nullable=False),
    Column("amount", Uint256(), nullable=False),
    Column("recipient", String(ADDRESS), nullable=True, index=True),
    Column("recipient_channel", String(ADDRESS), nullable=True, index=True),
    Column("recipient_transfer_id", String(HASH), nullable=True),
    Column("recipient_asset_id", String(ADDRESS), nullable=True),
    Column("recipient_amount", Uint256(), nullable=True),
    Column("error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""Routed payments: the sender's hop and, once forwarded, the recipient's hop."""

chain_transactions = Table(
    "chain_transactions",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("chain_id", Uint256(), nullable=False),
    Column("sender", String(ADDRESS), nullable=False),
    Column("nonce", BigInteger(), nullable=False),
    Column("to_address", String(ADDRESS), nullable=True),
    Column("data", LargeBinary(), nullable=False),
    Column("value", Uint256(), nullable=False),
    Column("gas", BigInteger(), nullable=True),
    Column("purpose", String(64), nullable=False),
    Column("channel_address", String(ADDRESS), nullable=True, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("mined_hash", String(HASH), nullable=True),
    Column("block_number", BigInteger(), nullable=True),
    Column("receipt_status", Integer(), nullable=True),
    Column("gas_used", BigInteger(), nullable=True),
    Column("error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_chain_transactions_sender_nonce", "sender", "nonce"),
)
"""On-chain transactions, recorded before they are first sent."""

# One live transaction per (chain, account, nonce): two processes sharing the account
# cannot both take a nonce. A failed one frees its nonce for reuse.
Index(
    "uq_chain_transactions_live_nonce",
    chain_transactions.c.chain_id,
    chain_transactions.c.sender,
    chain_transactions.c.nonce,
    unique=True,
    sqlite_where=chain_transactions.c.status != "failed",
    postgresql_where=chain_transactions.c.status != "failed",
)

transaction_sends = Table(
    "transaction_sends",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        AutoId,
        ForeignKey("chain_transactions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("tx_hash", String(HASH), nullable=False, unique=True),
    Column("gas_price", Uint256(), nullable=True),
    Column("sent_at", UtcDateTime(), nullable=False),
)
"""Every hash a transaction was sent under (re-sends bump the gas price)."""

watcher_blocks = Table(
    "watcher_blocks",
    metadata,
    Column("watcher", String(128), primary_key=True),
    Column("block_number", BigInteger(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The last block each chain watcher has fully processed."""

events = Table(
    "events",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("channel_address", String(ADDRESS), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("payload_json", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_events_channel_id", "channel_address", "id"),
)
"""The activity log a wallet reads, in insertion order."""

public_keys = Table(
    "public_keys",
    metadata,
    Column("address", String(ADDRESS), primary_key=True),
    Column("public_key", LargeBinary(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""Counterparties' uncompressed secp256k1 public keys (to encrypt preimages to them)."""

registered_secrets = Table(
    "registered_secrets",
    metadata,
    Column("lock_hash", String(HASH), primary_key=True),
    Column("preimage", String(HASH), nullable=False),
    Column("registered_at", BigInteger(), nullable=False),
    Column("block_number", BigInteger(), nullable=False),
)
"""Hashlock preimages registered in the on-chain secret registry, with the block time of
their first registration (read from its logs; a lock registered by its expiry still pays)."""

seen_messages = Table(
    "seen_messages",
    metadata,
    Column("message_key", String(74), primary_key=True),
    Column("timestamp_ms", BigInteger(), nullable=False, index=True),
)
"""Admitted message ids (sender ++ id, hex) with their timestamps: replays of messages a
party accepted stay refused after it restarts. Rows older than the time window are pruned."""

stream_vouchers = Table(
    "stream_vouchers",
    metadata,
    Column("stream_id", String(HASH), primary_key=True),
    Column("amount", Uint256(), nullable=False),
    Column("signature", String(132), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The highest voucher of each stream this party pays or is paid by (cumulative amount and
the payer's signature): the payee settles with it, the payer signs on from it."""

swap_quotes = Table(
    "swap_quotes",
    metadata,
    Column("quote_id", String(HASH), primary_key=True),
    Column("channel_address", String(ADDRESS), nullable=False, index=True),
    Column("transfer_id", String(HASH), nullable=False),
    Column("routing_id", String(HASH), nullable=True),
    Column("quote_json", Text(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=False),
)
"""Swap quotes the node has taken a payment with: each pays once (the transfer that used it
is kept, so a retransmission of that very create is still accepted)."""

collateral_profiles = Table(
    "collateral_profiles",
    metadata,
    Column("channel_address", String(ADDRESS), primary_key=True),
    Column("asset_id", String(ADDRESS), primary_key=True),
    Column("threshold", Uint256(), nullable=False),
    Column("target", Uint256(), nullable=False),
    Column("reclaim_threshold", Uint256(), nullable=False),
    Column("cap", Uint256(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""Collateral profiles the operator set for one channel and asset (admin API): they win
over the node's per-asset profile from its configuration."""
