"""dead letters keep a bounded prefix of the payload, with the whole payload's sha256 and size;
edges' heartbeat problems

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dead_letters') as batch:
        batch.add_column(sa.Column('payload_sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('size', sa.Integer(), nullable=True))
    with op.batch_alter_table('edge_status') as batch:
        batch.add_column(sa.Column('problems', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('edge_status') as batch:
        batch.drop_column('problems')
    with op.batch_alter_table('dead_letters') as batch:
        batch.drop_column('size')
        batch.drop_column('payload_sha256')
