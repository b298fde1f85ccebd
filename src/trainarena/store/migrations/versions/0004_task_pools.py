"""Stored tasks and pools, and what each pool tournament drew.

- ``task_pool``: a named group of stored tasks of one kind (text or image);
- ``stored_task``: a task added with ``trainarena task add``, its resolved definition (with the split
  key behind its secret split seed) and the sha256 digests of its base model, dataset and hidden split;
- ``tournament_draw``: the stored tasks a pool tournament drew, in play order, and its entry close.

Downgrading drops the three tables (tournaments keep their task rows, which hold full definitions).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'task_pool',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_pool')),
        sa.UniqueConstraint('name', name=op.f('uq_task_pool_name')),
    )
    op.create_table(
        'stored_task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('pool_id', sa.Integer(), nullable=False),
        sa.Column('task_type', sa.String(length=16), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('base_model_digest', sa.String(length=64), nullable=False),
        sa.Column('dataset_digest', sa.String(length=64), nullable=False),
        sa.Column('hidden_digest', sa.String(length=64), nullable=False),
        sa.Column('train_rows', sa.Integer(), nullable=False),
        sa.Column('hidden_rows', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['pool_id'], ['task_pool.id'], name=op.f('fk_stored_task_pool_id_task_pool')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_task')),
        sa.UniqueConstraint('name', name=op.f('uq_stored_task_name')),
    )
    op.create_index(op.f('ix_stored_task_pool_id'), 'stored_task', ['pool_id'], unique=False)
    op.create_table(
        'tournament_draw',
        sa.Column('tournament_id', sa.Integer(), nullable=False),
        sa.Column('pool_id', sa.Integer(), nullable=False),
        sa.Column('task_names', sa.JSON(), nullable=False),
        sa.Column('entry_closes_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['pool_id'], ['task_pool.id'], name=op.f('fk_tournament_draw_pool_id_task_pool')),
        sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_tournament_draw_tournament_id_tournament'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tournament_id', name=op.f('pk_tournament_draw')),
    )
    op.create_index(op.f('ix_tournament_draw_pool_id'), 'tournament_draw', ['pool_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_tournament_draw_pool_id'), table_name='tournament_draw')
    op.drop_table('tournament_draw')
    op.drop_index(op.f('ix_stored_task_pool_id'), table_name='stored_task')
    op.drop_table('stored_task')
    op.drop_table('task_pool')
