"""Alembic migrations of the store; applied on start-up by :func:`toolferry.store.db.migrate`."""
