"""The database schema, as SQLAlchemy Core tables (the migrations create exactly these)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from toolferry.store.columns import UtcDateTime

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("name", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("creation_time", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("logs", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    # The data site the task runs at (its agent runs it); NULL: the hub's own site.
    Column("site", String(64), nullable=True),
    Index("ix_tasks_owner_id", "owner", "id"),
    Index("ix_tasks_state_id", "state", "id"),
    Index("ix_tasks_name", "name"),
    Index("ix_tasks_site_state_id", "site", "state", "id"),
)

task_tags = Table(
    "task_tags",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_task_tags_key_value", "key", "value"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("task_id", "seq", name="uq_task_events_task_seq"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked", Boolean, nullable=False),
    Index("ix_tokens_user", "user"),
)

# Users' own storage secrets. Only ``sealed`` holds secrets (Fernet-encrypted, see
# toolferry.security.user_credentials); the other columns are what a listing may show.
storage_credentials = Table(
    "storage_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(128), nullable=False),
    Column("name", String(64), nullable=False),
    Column("prefix", String(2048), nullable=False),
    Column("username", Text, nullable=True),
    Column("access_key", Text, nullable=True),
    Column("secret_kinds", JSON, nullable=False),
    Column("header_names", JSON, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("owner", "name", name="uq_storage_credentials_owner_name"),
)

# Catalogue environments: one row per published version. ``document`` is the whole entry
# (toolferry.domain.environment.environment_to_dict); the other columns copy the fields that
# lookups filter on.
environments = Table(
    "environments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("review", String(16), nullable=False),
    Column("owner_id", String(128), nullable=False),
    Column("group_id", Text, nullable=True),
    Column("created", UtcDateTime(), nullable=False),
    Column("updated", UtcDateTime(), nullable=False),
    Column("document", JSON, nullable=False),
    UniqueConstraint("name", "version", name="uq_environments_name_version"),
)

# Hub processes sharing this database (toolferry.agent.replicas): a replica whose heartbeat
# (seen_at) is older than the lease is dead, and one live replica adopts its tasks.
replicas = Table(
    "replicas",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("seen_at", UtcDateTime(), nullable=False),
)

# Data sites whose agents run tasks next to their data (toolferry.agent.remote); ``info`` is
# what the agent reported last: capacity, classification, datasets, policy.
sites = Table(
    "sites",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("seen_at", UtcDateTime(), nullable=True),
    Column("info", JSON, nullable=False),
)

# Tasks the hub handed to a site's agent. From then on only the agent writes the task's events
# (the hub forwards a cancel as a request); unconfirmed deliveries are handed out again.
site_deliveries = Table(
    "site_deliveries",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    # A steward's decision where the site asks for approval: approved / rejected.
    Column("decision", String(16), nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_site_deliveries_site", "site"),
)

# Each site's audit log as its agent shipped it (toolferry.security.audit): the hub's copy is
# what a later, rewritten log at the site is checked against.
audit_records = Table(
    "audit_records",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("record", JSON, nullable=False),
)

# Outputs a site holds until one of its stewards releases them (what the agent reported).
airlock = Table(
    "airlock",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("files", JSON, nullable=False),
    Column("held_at", UtcDateTime(), nullable=False),
    Column("decision", String(16), nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_airlock_site", "site"),
)

# Users' public keys (base64 X25519): data sites seal results to them (toolferry.security.sealing).
user_keys = Table(
    "user_keys",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("public_key", String(64), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
