"""Run attempts as rows of their own, and one driver's lease per tournament.

Each existing run that was ever claimed gets one attempt row from its own fields (numbered by its
attempt count; a pending run that had been claimed was interrupted, so its attempt is recorded as
interrupted); a finished run counts that attempt; its evaluation moves to the attempt. The run keeps
its status and loses the per-try columns. Downgrading copies the counted attempt's values back.

On SQLite the table copies of batch mode need foreign keys off: run this through
``trainarena.store.upgrade_schema`` (which does so), not with foreign keys enforced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRY_COLUMNS = ('started_at', 'finished_at', 'wall_seconds', 'log_path', 'artifact_path', 'artifact_digest',
                'failure_reason')


def upgrade() -> None:
    op.create_table('tournament_lease',
    sa.Column('tournament_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('acquired_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_tournament_lease_tournament_id_tournament'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tournament_id', name=op.f('pk_tournament_lease'))
    )
    op.create_table('run_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('wall_seconds', sa.Float(), nullable=True),
    sa.Column('log_path', sa.Text(), nullable=True),
    sa.Column('artifact_path', sa.Text(), nullable=True),
    sa.Column('artifact_digest', sa.String(length=128), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('driver_host', sa.String(length=255), nullable=True),
    sa.Column('driver_pid', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_run_attempt_run_id_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_attempt')),
    sa.UniqueConstraint('run_id', 'number', name=op.f('uq_run_attempt_run_id_number'))
    )
    columns = ', '.join(_TRY_COLUMNS)
    op.execute(
        f"INSERT INTO run_attempt (run_id, number, status, {columns}) "
        f"SELECT id, CASE WHEN attempts > 0 THEN attempts ELSE 1 END, "
        f"CASE WHEN status = 'pending' THEN 'interrupted' ELSE status END, {columns} FROM run "
        "WHERE attempts > 0 OR status <> 'pending' OR id IN (SELECT run_id FROM evaluation)"
    )

    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.Integer(), nullable=True))
    op.execute("UPDATE evaluation SET attempt_id = (SELECT id FROM run_attempt WHERE run_attempt.run_id = evaluation.run_id)")
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.alter_column('attempt_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_evaluation_run_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_evaluation_attempt_id'), ['attempt_id'])
        batch_op.drop_constraint(batch_op.f('fk_evaluation_run_id_run'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_evaluation_attempt_id_run_attempt'), 'run_attempt', ['attempt_id'], ['id'], ondelete='CASCADE')
        batch_op.drop_column('run_id')

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counted_attempt_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('abandoned_reason', sa.Text(), nullable=True))
    op.execute(
        "UPDATE run SET counted_attempt_id = (SELECT id FROM run_attempt WHERE run_attempt.run_id = run.id) "
        "WHERE status NOT IN ('pending', 'running')"
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_run_counted_attempt_id_run_attempt'), 'run_attempt', ['counted_attempt_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_column('attempts')
        for column in _TRY_COLUMNS:
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('wall_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('log_path', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('artifact_path', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('artifact_digest', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('failure_reason', sa.Text(), nullable=True))
    counted = ', '.join(f"{column} = (SELECT {column} FROM run_attempt WHERE id = run.counted_attempt_id)" for column in _TRY_COLUMNS)
    op.execute(
        f"UPDATE run SET {counted}, "
        "attempts = COALESCE((SELECT max(number) FROM run_attempt WHERE run_attempt.run_id = run.id), 0)"
    )
    op.execute("UPDATE run SET failure_reason = abandoned_reason WHERE counted_attempt_id IS NULL")
    # Only a counted attempt's evaluation is the run's; 0001 holds one evaluation per run.
    op.execute("DELETE FROM evaluation WHERE attempt_id NOT IN (SELECT counted_attempt_id FROM run WHERE counted_attempt_id IS NOT NULL)")
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.alter_column('attempts', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_run_counted_attempt_id_run_attempt'), type_='foreignkey')
        batch_op.drop_column('abandoned_reason')
        batch_op.drop_column('counted_attempt_id')

    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_id', sa.Integer(), nullable=True))
    op.execute("UPDATE evaluation SET run_id = (SELECT run_id FROM run_attempt WHERE run_attempt.id = evaluation.attempt_id)")
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.alter_column('run_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_evaluation_attempt_id_run_attempt'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_evaluation_run_id_run'), 'run', ['run_id'], ['id'], ondelete='CASCADE')
        batch_op.drop_constraint(batch_op.f('uq_evaluation_attempt_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_evaluation_run_id'), ['run_id'])
        batch_op.drop_column('attempt_id')

    op.drop_table('run_attempt')
    op.drop_table('tournament_lease')
