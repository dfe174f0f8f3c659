"""edge_config_reports: the configuration version each edge reports it applied, or refused
(desired vs reported state)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'edge_config_reports',
        sa.Column('site', sa.String(length=64), primary_key=True),
        sa.Column('edge', sa.String(length=64), primary_key=True),
        sa.Column('applied_version', sa.Integer(), nullable=True),
        sa.Column('applied_hash', sa.String(length=12), nullable=False),
        sa.Column('applied_since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('refused_version', sa.Integer(), nullable=True),
        sa.Column('refused_hash', sa.String(length=12), nullable=True),
        sa.Column('refused_problems', sa.JSON(), nullable=True),
        sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('edge_config_reports')
