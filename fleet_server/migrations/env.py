"""Alembic environment: always given a connection by fleet_server.migrate."""

from alembic import context

from fleet_server.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
