"""Registered secrets (hashlock preimages revealed in the on-chain secret registry) and
seen messages (admitted message ids, so replays stay refused across a restart), and an
index of transfers by definition (what the recovery of withdrawals looks at), and the
highest voucher of each stream.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

HASH = sa.String(66)
UINT256 = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")


def upgrade() -> None:
    op.create_table(
        "registered_secrets",
        sa.Column("lock_hash", HASH, nullable=False),
        sa.Column("preimage", HASH, nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lock_hash", name="pk_registered_secrets"),
    )
    op.create_table(
        "seen_messages",
        sa.Column("message_key", sa.String(74), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_key", name="pk_seen_messages"),
    )
    op.create_index("ix_seen_messages_timestamp_ms", "seen_messages", ["timestamp_ms"])
    op.create_index("ix_transfers_definition_active", "transfers",
                    ["transfer_definition", "resolved_nonce"])
    op.create_table(
        "stream_vouchers",
        sa.Column("stream_id", HASH, nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name="pk_stream_vouchers"),
    )


def downgrade() -> None:
    op.drop_table("stream_vouchers")
    op.drop_index("ix_transfers_definition_active", "transfers")
    op.drop_table("seen_messages")
    op.drop_table("registered_secrets")
