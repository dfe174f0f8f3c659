"""workflow: audit chain, feedback, commands, silences, webhooks, grid, incident workflow fields

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('payload_sha256', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_incident_id'), ['incident_id'], unique=False)

    op.create_table('commands',
    sa.Column('command_id', sa.String(length=36), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('edge', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=True),
    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('command_id')
    )
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commands_incident_id'), ['incident_id'], unique=False)

    op.create_table('grid_nodes',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('parent', sa.String(length=64), nullable=True),
    sa.Column('workers', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=True),
    sa.Column('camera', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=True),
    sa.Column('hazard', sa.String(length=40), nullable=True),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppressions_camera'), ['camera'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hook', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_status'), ['status'], unique=False)

    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('photos', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_aliases',
    sa.Column('incident_key', sa.String(length=200), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_key')
    )
    with op.batch_alter_table('incident_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_aliases_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table('incident_evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='edge', nullable=False))

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='camera', nullable=False))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('assigned_unit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('episode_count', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('rework_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('escalated_to', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('supervised', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('stage', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('stage_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stage_deadline_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deadline_color', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('ever_overdue', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('registered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('close_reason', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('feedback_by', sa.String(length=64), nullable=True))
        batch_op.alter_column('edge',
               existing_type=sa.VARCHAR(length=64),
               nullable=True)
        batch_op.alter_column('camera',
               existing_type=sa.VARCHAR(length=64),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_incidents_assigned_unit'), ['assigned_unit'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_stage_deadline_at'), ['stage_deadline_at'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('unit', sa.String(length=64), nullable=True))

def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('unit')
        batch_op.drop_column('grid')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_stage_deadline_at'))
        batch_op.drop_index(batch_op.f('ix_incidents_assigned_unit'))
        batch_op.alter_column('camera',
               existing_type=sa.VARCHAR(length=64),
               nullable=False)
        batch_op.alter_column('edge',
               existing_type=sa.VARCHAR(length=64),
               nullable=False)
        batch_op.drop_column('feedback_by')
        batch_op.drop_column('merged_into')
        batch_op.drop_column('close_reason')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('registered_at')
        batch_op.drop_column('ever_overdue')
        batch_op.drop_column('deadline_color')
        batch_op.drop_column('stage_deadline_at')
        batch_op.drop_column('stage_started_at')
        batch_op.drop_column('stage')
        batch_op.drop_column('supervised')
        batch_op.drop_column('escalated_to')
        batch_op.drop_column('escalation_level')
        batch_op.drop_column('rework_count')
        batch_op.drop_column('episode_count')
        batch_op.drop_column('assigned_unit')
        batch_op.drop_column('lon')
        batch_op.drop_column('lat')
        batch_op.drop_column('address')
        batch_op.drop_column('description')
        batch_op.drop_column('source')

    with op.batch_alter_table('incident_evidence', schema=None) as batch_op:
        batch_op.drop_column('kind')

    with op.batch_alter_table('incident_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_aliases_incident_id'))

    op.drop_table('incident_aliases')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_incident_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_status'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppressions_camera'))

    op.drop_table('suppressions')
    op.drop_table('grid_nodes')
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commands_incident_id'))

    op.drop_table('commands')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_incident_id'))

    op.drop_table('audit_log')
