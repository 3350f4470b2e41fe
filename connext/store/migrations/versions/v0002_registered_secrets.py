"""Registered secrets: hashlock preimages revealed in the on-chain secret registry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

HASH = sa.String(66)


def upgrade() -> None:
    op.create_table(
        "registered_secrets",
        sa.Column("lock_hash", HASH, nullable=False),
        sa.Column("preimage", HASH, nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lock_hash", name="pk_registered_secrets"),
    )


def downgrade() -> None:
    op.drop_table("registered_secrets")
