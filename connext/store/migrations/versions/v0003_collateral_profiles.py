"""Collateral profiles per channel and asset, set by the operator through the admin API.

Revision ID: 0003_collateral_profiles
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_collateral_profiles"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

ADDRESS = sa.String(42)
UINT256 = sa.String(78).with_variant(postgresql.NUMERIC(78, 0), "postgresql")


def upgrade() -> None:
    op.create_table(
        "collateral_profiles",
        sa.Column("channel_address", ADDRESS, nullable=False),
        sa.Column("asset_id", ADDRESS, nullable=False),
        sa.Column("threshold", UINT256, nullable=False),
        sa.Column("target", UINT256, nullable=False),
        sa.Column("reclaim_threshold", UINT256, nullable=False),
        sa.Column("cap", UINT256, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_address", "asset_id", name="pk_collateral_profiles"),
    )


def downgrade() -> None:
    op.drop_table("collateral_profiles")
