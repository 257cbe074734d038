"""Users' storage credentials, their secrets encrypted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_credentials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(2048), nullable=False),
        sa.Column("username", sa.Text, nullable=True),
        sa.Column("access_key", sa.Text, nullable=True),
        sa.Column("secret_kinds", sa.JSON, nullable=False),
        sa.Column("header_names", sa.JSON, nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner", "name", name="uq_storage_credentials_owner_name"),
    )


def downgrade() -> None:
    op.drop_table("storage_credentials")
