"""Swap quotes the node took a payment with (each pays once), linked to the payment's
transfer and routing.

Revision ID: 0004
Revises: 0003_collateral_profiles
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003_collateral_profiles"
branch_labels: str | None = None
depends_on: str | None = None

HASH = sa.String(66)
ADDRESS = sa.String(42)


def upgrade() -> None:
    op.create_table(
        "swap_quotes",
        sa.Column("quote_id", HASH, nullable=False),
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("transfer_id", HASH, nullable=False),
        sa.Column("routing_id", HASH, nullable=True),
        sa.Column("quote_json", sa.Text(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("quote_id", name="pk_swap_quotes"),
    )
    op.create_index("ix_swap_quotes_channel_address", "swap_quotes", ["channel_address"])


def downgrade() -> None:
    op.drop_index("ix_swap_quotes_channel_address", "swap_quotes")
    op.drop_table("swap_quotes")
