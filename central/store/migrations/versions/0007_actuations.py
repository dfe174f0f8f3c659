"""actuations: what edges did to their actuators (door holds, voice warnings), as they said it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'actuations',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event_id', sa.String(length=36), nullable=False, unique=True),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('edge', sa.String(length=64), nullable=False),
        sa.Column('camera', sa.String(length=64), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('actuator', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=True),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('incident_key', sa.String(length=200), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('held_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('latency_ms', sa.Float(), nullable=True),
        sa.Column('by', sa.String(length=100), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_actuations_incident_key', 'actuations', ['incident_key'])
    op.create_index('ix_actuations_edge_actuator_at', 'actuations', ['site', 'edge', 'actuator', 'at'])


def downgrade() -> None:
    op.drop_table('actuations')
