"""Data sites and their agents: enrolled sites, tasks routed to a site, and what was handed to
its agent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("info", sa.JSON, nullable=False),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("site", sa.String(64), nullable=True))
        batch.create_index("ix_tasks_site_state_id", ["site", "state", "id"])
    op.create_table(
        "site_deliveries",
        sa.Column(
            "task_id",
            sa.String(32),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Index("ix_site_deliveries_site", "site"),
    )


def downgrade() -> None:
    op.drop_table("site_deliveries")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_site_state_id")
        batch.drop_column("site")
    op.drop_table("sites")
