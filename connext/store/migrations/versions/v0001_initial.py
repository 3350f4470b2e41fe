"""Initial schema: channels, history, pending updates, transfers, routing, chain
transactions, watcher blocks, events and public keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are spelled out here rather than imported from `schema`, so this revision means the
same thing forever even if the Python types change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ADDRESS = sa.String(42)
HASH = sa.String(66)
UINT256 = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")
TIME = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("alice", ADDRESS, nullable=False),
        sa.Column("bob", ADDRESS, nullable=False),
        sa.Column("chain_id", UINT256, nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("update_json", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("channel_address", name="pk_channels"),
        sa.UniqueConstraint("alice", "bob", "chain_id", name="uq_channels_parties"),
    )
    op.create_index("ix_channels_alice", "channels", ["alice"])
    op.create_index("ix_channels_bob", "channels", ["bob"])

    op.create_table(
        "pending_updates",
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("update_json", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("channel_address", name="pk_pending_updates"),
    )

    op.create_table(
        "channel_updates",
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("update_json", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("channel_address", "nonce", name="pk_channel_updates"),
        sa.ForeignKeyConstraint(
            ["channel_address"], ["channels.channel_address"],
            name="fk_channel_updates_channel_address_channels", ondelete="CASCADE",
        ),
    )

    op.create_table(
        "transfers",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("transfer_id", HASH, nullable=False),
        sa.Column("routing_id", HASH, nullable=True),
        sa.Column("transfer_definition", ADDRESS, nullable=False),
        sa.Column("initiator", ADDRESS, nullable=False),
        sa.Column("responder", ADDRESS, nullable=False),
        sa.Column("asset_id", ADDRESS, nullable=False),
        sa.Column("created_nonce", sa.BigInteger(), nullable=False),
        sa.Column("resolved_nonce", sa.BigInteger(), nullable=True),
        sa.Column("transfer_json", sa.Text(), nullable=False),
        sa.Column("final_balance_json", sa.Text(), nullable=True),
        sa.Column("resolver", sa.Text(), nullable=True),
        sa.Column("resolve_meta_json", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transfers"),
        sa.ForeignKeyConstraint(
            ["channel_address"], ["channels.channel_address"],
            name="fk_transfers_channel_address_channels", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("channel_address", "transfer_id", "created_nonce",
                            name="uq_transfers_channel_transfer_nonce"),
    )
    op.create_index("ix_transfers_transfer_id", "transfers", ["transfer_id"])
    op.create_index("ix_transfers_routing_id", "transfers", ["routing_id"])
    op.create_index("ix_transfers_channel_active", "transfers",
                    ["channel_address", "resolved_nonce"])

    op.create_table(
        "routings",
        sa.Column("routing_id", HASH, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sender_channel", ADDRESS, nullable=False),
        sa.Column("sender_transfer_id", HASH, nullable=False),
        sa.Column("asset_id", ADDRESS, nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("recipient", ADDRESS, nullable=True),
        sa.Column("recipient_channel", ADDRESS, nullable=True),
        sa.Column("recipient_transfer_id", HASH, nullable=True),
        sa.Column("recipient_asset_id", ADDRESS, nullable=True),
        sa.Column("recipient_amount", UINT256, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("routing_id", name="pk_routings"),
    )
    op.create_index("ix_routings_status", "routings", ["status"])
    op.create_index("ix_routings_sender_channel", "routings", ["sender_channel"])
    op.create_index("ix_routings_recipient", "routings", ["recipient"])
    op.create_index("ix_routings_recipient_channel", "routings", ["recipient_channel"])

    op.create_table(
        "chain_transactions",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("chain_id", UINT256, nullable=False),
        sa.Column("sender", ADDRESS, nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("to_address", ADDRESS, nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("value", UINT256, nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("channel_address", ADDRESS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mined_hash", HASH, nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("receipt_status", sa.Integer(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_transactions"),
    )
    op.create_index("ix_chain_transactions_channel_address", "chain_transactions",
                    ["channel_address"])
    op.create_index("ix_chain_transactions_status", "chain_transactions", ["status"])
    op.create_index("ix_chain_transactions_sender_nonce", "chain_transactions",
                    ["sender", "nonce"])
    live = sa.text("status != 'failed'")
    op.create_index("uq_chain_transactions_live_nonce", "chain_transactions",
                    ["chain_id", "sender", "nonce"], unique=True,
                    sqlite_where=live, postgresql_where=live)

    op.create_table(
        "transaction_sends",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("transaction_id", AUTO_ID, nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("gas_price", UINT256, nullable=True),
        sa.Column("sent_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transaction_sends"),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["chain_transactions.id"],
            name="fk_transaction_sends_transaction_id_chain_transactions", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("tx_hash", name="uq_transaction_sends_tx_hash"),
    )
    op.create_index("ix_transaction_sends_transaction_id", "transaction_sends",
                    ["transaction_id"])

    op.create_table(
        "watcher_blocks",
        sa.Column("watcher", sa.String(128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("watcher", name="pk_watcher_blocks"),
    )

    op.create_table(
        "events",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("channel_address", ADDRESS, nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_channel_id", "events", ["channel_address", "id"])

    op.create_table(
        "public_keys",
        sa.Column("address", ADDRESS, nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_public_keys"),
    )


def downgrade() -> None:
    for table in ("public_keys", "events", "watcher_blocks", "transaction_sends",
                  "chain_transactions", "routings", "transfers", "channel_updates",
                  "pending_updates", "channels"):
        op.drop_table(table)
