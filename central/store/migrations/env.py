"""Alembic environment: runs online against the engine handed over by ``central.store.migrate``."""

from __future__ import annotations

from alembic import context

from central.store.tables import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    # Batch mode lets later migrations alter tables on SQLite, which lacks most ALTER TABLE.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
