"""model_changes: which detector each camera runs, who changed it, and the gate's verdict

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_changes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('edge', sa.String(length=64), nullable=False),
        sa.Column('camera', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('from_model', sa.String(length=100), nullable=False),
        sa.Column('to_model', sa.String(length=100), nullable=False),
        sa.Column('to_sha256', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('gate', sa.JSON(), nullable=True),
        sa.Column('command_id', sa.String(length=36), nullable=True),
    )
    op.create_index('ix_model_changes_camera_at', 'model_changes', ['site', 'camera', 'at'])


def downgrade() -> None:
    op.drop_table('model_changes')
