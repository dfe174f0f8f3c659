"""model_changes and review_labels: which detector each camera runs (who changed it, the gate's
verdict), and the labelled pictures monitors' reviews make

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
    op.create_table(
        'review_labels',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('incident_id', sa.Integer(), sa.ForeignKey('incidents.id', ondelete='CASCADE'), nullable=False),
        sa.Column('frame_sha256', sa.String(length=64), nullable=False),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('camera', sa.String(length=64), nullable=False),
        sa.Column('hazard', sa.String(length=40), nullable=False),
        sa.Column('model', sa.String(length=100), nullable=True),
        sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('verdict', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('boxes', sa.JSON(), nullable=False),
        sa.Column('reviewer', sa.String(length=80), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_review_labels_incident_id', 'review_labels', ['incident_id'])


def downgrade() -> None:
    op.drop_table('review_labels')
    op.drop_table('model_changes')
