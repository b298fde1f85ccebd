"""Ad-hoc and reference runs beside tournament runs, in the same ``run`` table.

Why one table and not a second one that reports union: an ad-hoc run is the same thing as a tournament
run (one script, one task, attempts, an evaluation, logs and an artifact), so it reuses ``task``,
``run``, ``run_attempt`` and ``evaluation`` as they are; ``runs show RUN_ID`` needs one id space; and
the per-task leaderboard reads one table. What differs is only where the run hangs:

- ``task.match_row_id`` becomes nullable: an ad-hoc run's task row belongs to no match (one task row
  per ad-hoc run, holding the definition with the seed that run used);
- ``task.digest`` (indexed): the definition's digest with the seed left out (``runs.task_key``), what
  references are cached by and leaderboards group by; existing rows are filled in here;
- ``run.origin`` (indexed): tournament (every existing row), adhoc, house or base_model (the two
  references ``trainarena run`` compares with, cached per task digest);
- ``run.competitor_id`` becomes nullable: a working tree run with ``trainarena run --repo`` is not
  registered (``source_path``, ``source_commit``, ``source_dirty``, ``snapshot_path`` say what ran),
  and a reference run has no competitor.

Downgrading deletes the runs and task rows that have no tournament, then restores the constraints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _task_key(definition: dict) -> str:
    """runs.task_key as of this revision, frozen here so the migration never changes meaning."""
    data = {**definition, "seed": 0}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=24), nullable=True))
        batch_op.alter_column('match_row_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_task_digest'), ['digest'], unique=False)
    connection = op.get_bind()
    task = sa.table('task', sa.column('id', sa.Integer()), sa.column('definition', sa.JSON()), sa.column('digest', sa.String()))
    for row in connection.execute(sa.select(task.c.id, task.c.definition)).all():
        connection.execute(task.update().where(task.c.id == row.id).values(digest=_task_key(row.definition)))

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), server_default='tournament', nullable=False))
        batch_op.add_column(sa.Column('source_path', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source_dirty', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('snapshot_path', sa.Text(), nullable=True))
        batch_op.alter_column('competitor_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_run_origin'), ['origin'], unique=False)


def downgrade() -> None:
    # Attempts and evaluations go with their runs (ON DELETE CASCADE is not relied on: SQLite batch
    # mode runs with foreign keys off).
    op.execute("DELETE FROM evaluation WHERE attempt_id IN (SELECT id FROM run_attempt WHERE run_id IN "
               "(SELECT id FROM run WHERE origin <> 'tournament'))")
    op.execute("UPDATE run SET counted_attempt_id = NULL WHERE origin <> 'tournament'")
    op.execute("DELETE FROM run_attempt WHERE run_id IN (SELECT id FROM run WHERE origin <> 'tournament')")
    op.execute("DELETE FROM run WHERE origin <> 'tournament'")
    op.execute("DELETE FROM task WHERE match_row_id IS NULL")
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_origin'))
        batch_op.alter_column('competitor_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('snapshot_path')
        batch_op.drop_column('source_dirty')
        batch_op.drop_column('source_commit')
        batch_op.drop_column('source_path')
        batch_op.drop_column('origin')

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_digest'))
        batch_op.alter_column('match_row_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('digest')
