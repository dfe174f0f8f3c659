"""model_artifacts and edge_credentials: the model files central serves its edges over HTTP, and
the per-edge tokens they fetch them with

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_artifacts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('classes_file', sa.String(length=200), nullable=False),
        sa.Column('classes_sha256', sa.String(length=64), nullable=False),
        sa.Column('classes_size', sa.Integer(), nullable=False),
        sa.Column('entry', sa.JSON(), nullable=False),
        sa.Column('published', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.UniqueConstraint('name', 'sha256'),
    )
    op.create_index('ix_model_artifacts_sha256', 'model_artifacts', ['sha256'])
    op.create_table(
        'edge_credentials',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('edge', sa.String(length=64), nullable=False),
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('token_sha256'),
    )


def downgrade() -> None:
    op.drop_table('edge_credentials')
    op.drop_index('ix_model_artifacts_sha256', table_name='model_artifacts')
    op.drop_table('model_artifacts')
