"""edge_config_changes: every configuration central sends an edge, numbered per edge and
hash-chained, for its history and restore

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'edge_config_changes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('edge', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.Column('restored_from', sa.Integer(), nullable=True),
        sa.Column('command_id', sa.String(length=36), nullable=True),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.UniqueConstraint('site', 'edge', 'version'),
    )


def downgrade() -> None:
    op.drop_table('edge_config_changes')
