"""Stewards' decisions on tasks awaiting approval at a site, and the sites' audit records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site_deliveries") as batch:
        batch.add_column(sa.Column("decision", sa.String(16), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=True))
    op.create_table(
        "audit_records",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_records")
    with op.batch_alter_table("site_deliveries") as batch:
        batch.drop_column("reason")
        batch.drop_column("decided_by")
        batch.drop_column("decision")
