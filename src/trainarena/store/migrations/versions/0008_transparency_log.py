"""The transparency log (records/log.py): its entries, its size, and a signed tree head per size.

- ``log_state``: one row holding the log's size; every append increments it first (the lock appenders queue on).
- ``log_entry``: the leaves, each a DSSE envelope of a signed statement, with its RFC 6962 leaf hash.
- ``tree_head``: the signed Merkle root of the log after each append.

Downgrading drops the three tables, and with them the log: export the bundles first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    log_state = op.create_table('log_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_state'))
    )
    op.bulk_insert(log_state, [{'id': 1, 'size': 0}])
    op.create_table('log_entry',
    sa.Column('index', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('tournament_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('envelope', sa.JSON(), nullable=False),
    sa.Column('leaf_hash', sa.String(length=64), nullable=False),
    sa.Column('appended_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('index', name=op.f('pk_log_entry')),
    sa.UniqueConstraint('key', name=op.f('uq_log_entry_key'))
    )
    with op.batch_alter_table('log_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_entry_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_entry_tournament_id'), ['tournament_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_entry_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_entry_job_id'), ['job_id'], unique=False)
    op.create_table('tree_head',
    sa.Column('size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.String(length=64), nullable=False),
    sa.Column('envelope', sa.JSON(), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_tree_head'))
    )


def downgrade() -> None:
    op.drop_table('tree_head')
    with op.batch_alter_table('log_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_entry_job_id'))
        batch_op.drop_index(batch_op.f('ix_log_entry_run_id'))
        batch_op.drop_index(batch_op.f('ix_log_entry_tournament_id'))
        batch_op.drop_index(batch_op.f('ix_log_entry_kind'))
    op.drop_table('log_entry')
    op.drop_table('log_state')
