"""Alembic environment: runs on the connection handed over by serving.migrate."""

from alembic import context

from serving.db import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through serving.migrate.upgrade(), which supplies the connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
