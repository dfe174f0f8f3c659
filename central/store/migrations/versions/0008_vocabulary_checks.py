"""the domain's words as database constraints: incident state, close reason, condition and source,
user role, command status (CHECK on PostgreSQL; triggers on SQLite, which cannot add a CHECK to an
existing table without rebuilding it)

The lists are written out here, as of this revision; tests/central/test_vocabulary.py holds them
to central/workflow/vocabulary.py, so a new word needs a new migration.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("incidents", "state"): ("received", "triage", "registered", "dispatched", "in_progress", "feedback", "checking",
                             "closed", "returned"),
    ("incidents", "close_reason"): ("fixed", "false_alarm", "duplicate", "transferred", "forced", "suppressed"),
    ("incidents", "condition"): ("active", "cleared"),
    ("incidents", "source"): ("camera", "open311"),
    ("users", "role"): ("admin", "monitor", "supervisor", "grid_chief", "grid_worker", "unit"),
    ("commands", "status"): ("pending", "ok", "error"),
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    for (table, column), words in WORDS.items():
        listed = ", ".join(f"'{w}'" for w in words)
        name = f"ck_{table}_{column}"
        if _sqlite():
            # NULL NOT IN (...) is NULL: a NULL passes here as it would a CHECK (NOT NULL columns refuse it anyway).
            message = f"{table}.{column} must be one of {', '.join(words)}"
            for suffix, when in (("insert", "INSERT"), ("update", f"UPDATE OF {column}")):
                op.execute(f"CREATE TRIGGER {name}_{suffix} BEFORE {when} ON {table} FOR EACH ROW "
                           f"WHEN NEW.{column} NOT IN ({listed}) BEGIN SELECT RAISE(ABORT, '{message}'); END")
        else:
            op.create_check_constraint(name, table, f"{column} IN ({listed})")


def downgrade() -> None:
    for table, column in WORDS:
        name = f"ck_{table}_{column}"
        if _sqlite():
            op.execute(f"DROP TRIGGER IF EXISTS {name}_insert")
            op.execute(f"DROP TRIGGER IF EXISTS {name}_update")
        else:
            op.drop_constraint(name, table, type_="check")
