"""Alembic migrations of the incident store (run by central.store.migrate)."""
