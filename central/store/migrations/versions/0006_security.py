"""security and personal data: token versions and user ownership, uploader of evidence, purge marks,
evidence holds, legal hold on incidents, login attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('token_version', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('managed_by', sa.String(length=8), nullable=False, server_default='file'))
    with op.batch_alter_table('evidence') as batch:
        batch.add_column(sa.Column('uploaded_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'evidence_holds',
        sa.Column('sha256', sa.String(length=64), primary_key=True),
        sa.Column('holder', sa.String(length=100), primary_key=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'login_attempts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_login_attempts_at', 'login_attempts', ['at'])
    op.create_index('ix_login_attempts_username', 'login_attempts', ['username'])
    op.create_index('ix_login_attempts_address', 'login_attempts', ['address'])


def downgrade() -> None:
    op.drop_table('login_attempts')
    op.drop_table('evidence_holds')
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('legal_hold')
    with op.batch_alter_table('evidence') as batch:
        batch.drop_column('purged_at')
        batch.drop_column('uploaded_by')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('managed_by')
        batch.drop_column('token_version')
