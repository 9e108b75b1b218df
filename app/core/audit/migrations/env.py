"""Alembic environment: migrations run only on the connection the journal hands over."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the journal migrations run from app.core.audit.migrations.upgrade(), with a connection")

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
