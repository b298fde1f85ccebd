"""The HTTP API's tables.

- ``api_key``: bearer keys (their SHA-256 only) and roles;
- ``uploaded_file``: customers' datasets, checked on upload (a deleted file keeps its row);
- ``job`` and ``job_event``: customers' training jobs and their event stream;
- ``registered_model``: the model registry (jobs' models and champions').

Runs of jobs use the existing ``run`` table with origin ``job``. Downgrading drops all five.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_key_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_key_name'))
    )
    op.create_table('uploaded_file',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('owner_key_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['owner_key_id'], ['api_key.id'], name=op.f('fk_uploaded_file_owner_key_id_api_key')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploaded_file'))
    )
    with op.batch_alter_table('uploaded_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploaded_file_owner_key_id'), ['owner_key_id'], unique=False)

    op.create_table('job',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('owner_key_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.String(length=40), nullable=False),
    sa.Column('task_type', sa.String(length=16), nullable=False),
    sa.Column('base_model', sa.Text(), nullable=False),
    sa.Column('field_mapping', sa.JSON(), nullable=False),
    sa.Column('budget_tier', sa.String(length=32), nullable=False),
    sa.Column('budget_seconds', sa.Float(), nullable=False),
    sa.Column('validation_share', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('competitor_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('model_id', sa.String(length=40), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('worker_id', sa.String(length=64), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_job_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['file_id'], ['uploaded_file.id'], name=op.f('fk_job_file_id_uploaded_file')),
    sa.ForeignKeyConstraint(['owner_key_id'], ['api_key.id'], name=op.f('fk_job_owner_key_id_api_key')),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_job_run_id_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_owner_key_id'), ['owner_key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_status'), ['status'], unique=False)

    op.create_table('job_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_job_event_job_id_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_event'))
    )
    with op.batch_alter_table('job_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_event_job_id'), ['job_id'], unique=False)

    op.create_table('registered_model',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('owner_key_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('competitor_id', sa.Integer(), nullable=True),
    sa.Column('task_type', sa.String(length=16), nullable=False),
    sa.Column('base_model', sa.Text(), nullable=False),
    sa.Column('dataset_digest', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('published_url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_registered_model_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_registered_model_job_id_job')),
    sa.ForeignKeyConstraint(['owner_key_id'], ['api_key.id'], name=op.f('fk_registered_model_owner_key_id_api_key')),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_registered_model_run_id_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_model'))
    )
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registered_model_owner_key_id'), ['owner_key_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registered_model_owner_key_id'))

    op.drop_table('registered_model')
    with op.batch_alter_table('job_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_event_job_id'))

    op.drop_table('job_event')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_status'))
        batch_op.drop_index(batch_op.f('ix_job_owner_key_id'))
        batch_op.drop_index(batch_op.f('ix_job_created_at'))

    op.drop_table('job')
    with op.batch_alter_table('uploaded_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploaded_file_owner_key_id'))

    op.drop_table('uploaded_file')
    op.drop_table('api_key')
