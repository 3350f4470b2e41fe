"""An index on when routed payments were made: the admin API's totals and timeline read a
time window of the node's books in SQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_routings_created_at", "routings", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_routings_created_at", "routings")
