"""Persistence behind small repository interfaces: SQLAlchemy + Alembic; SQLite or PostgreSQL."""
