"""inventory_edges and inventory_cameras: the index of the edges and cameras whose configuration
lives in edge_config_changes (the database is the source of truth), for search and listing at
30,000 cameras

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'inventory_edges',
        sa.Column('site', sa.String(length=64), primary_key=True),
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('cameras', sa.Integer(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_inventory_edges_change_id', 'inventory_edges', ['change_id'])
    op.create_table(
        'inventory_cameras',
        sa.Column('site', sa.String(length=64), primary_key=True),
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('edge', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('channel_id', sa.String(length=20), nullable=True),
        sa.Column('grid_cell', sa.String(length=64), nullable=True),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('zones', sa.Integer(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_inventory_cameras_edge', 'inventory_cameras', ['site', 'edge'])
    op.create_index('ix_inventory_cameras_grid', 'inventory_cameras', ['site', 'grid_cell'])
    op.create_index('ix_inventory_cameras_name', 'inventory_cameras', ['name'])
    op.create_index('ix_inventory_cameras_channel', 'inventory_cameras', ['channel_id'])


def downgrade() -> None:
    op.drop_table('inventory_cameras')
    op.drop_table('inventory_edges')
