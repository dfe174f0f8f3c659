"""Central's database: engines and sessions, ORM tables, Alembic migrations, leases, the change counter."""
