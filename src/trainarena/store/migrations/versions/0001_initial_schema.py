"""Initial schema: competitors, tournaments, rounds, matches, tasks, runs, evaluations, champions, weights.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('competitor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('repo_url', sa.Text(), nullable=False),
    sa.Column('commit_sha', sa.String(length=64), nullable=False),
    sa.Column('tree_hash', sa.String(length=128), nullable=False),
    sa.Column('source_digest', sa.String(length=128), nullable=False),
    sa.Column('entrypoint', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=True),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competitor')),
    sa.UniqueConstraint('name', name=op.f('uq_competitor_name'))
    )
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competitor_source_digest'), ['source_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_competitor_tree_hash'), ['tree_hash'], unique=False)

    op.create_table('tournament',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('champion_before_id', sa.Integer(), nullable=True),
    sa.Column('champion_after_id', sa.Integer(), nullable=True),
    sa.Column('outcome_reason', sa.Text(), nullable=True),
    sa.Column('weight_remainder', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['champion_after_id'], ['competitor.id'], name=op.f('fk_tournament_champion_after_id_competitor')),
    sa.ForeignKeyConstraint(['champion_before_id'], ['competitor.id'], name=op.f('fk_tournament_champion_before_id_competitor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tournament')),
    sa.UniqueConstraint('name', name=op.f('uq_tournament_name'))
    )
    op.create_table('champion_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('competitor_id', sa.Integer(), nullable=False),
    sa.Column('tournament_id', sa.Integer(), nullable=True),
    sa.Column('crowned_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_champion_history_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_champion_history_tournament_id_tournament')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_champion_history'))
    )
    with op.batch_alter_table('champion_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_champion_history_kind'), ['kind'], unique=False)

    op.create_table('round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tournament_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('byes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_round_tournament_id_tournament'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_round')),
    sa.UniqueConstraint('tournament_id', 'index', name=op.f('uq_round_tournament_id_index'))
    )
    op.create_table('tournament_entrant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tournament_id', sa.Integer(), nullable=False),
    sa.Column('competitor_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_tournament_entrant_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_tournament_entrant_tournament_id_tournament'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tournament_entrant')),
    sa.UniqueConstraint('tournament_id', 'competitor_id', name=op.f('uq_tournament_entrant_tournament_id_competitor_id'))
    )
    op.create_table('weight',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tournament_id', sa.Integer(), nullable=False),
    sa.Column('competitor_id', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_weight_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournament.id'], name=op.f('fk_weight_tournament_id_tournament'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weight')),
    sa.UniqueConstraint('tournament_id', 'competitor_id', name=op.f('uq_weight_tournament_id_competitor_id'))
    )
    op.create_table('match',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('competitors', sa.JSON(), nullable=False),
    sa.Column('tasks_count', sa.Integer(), nullable=False),
    sa.Column('advance_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['round.id'], name=op.f('fk_match_round_id_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match')),
    sa.UniqueConstraint('round_id', 'match_id', name=op.f('uq_match_round_id_match_id'))
    )
    op.create_table('task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_row_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('prepared', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['match_row_id'], ['match.id'], name=op.f('fk_task_match_row_id_match'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task')),
    sa.UniqueConstraint('match_row_id', 'index', name=op.f('uq_task_match_row_id_index'))
    )
    op.create_table('run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('competitor_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('wall_seconds', sa.Float(), nullable=True),
    sa.Column('log_path', sa.Text(), nullable=True),
    sa.Column('artifact_path', sa.Text(), nullable=True),
    sa.Column('artifact_digest', sa.String(length=128), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'], name=op.f('fk_run_competitor_id_competitor')),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_run_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run')),
    sa.UniqueConstraint('task_id', 'competitor_id', name=op.f('uq_run_task_id_competitor_id'))
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_status'), ['status'], unique=False)

    op.create_table('evaluation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('per_example', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_evaluation_run_id_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation')),
    sa.UniqueConstraint('run_id', name=op.f('uq_evaluation_run_id'))
    )


def downgrade() -> None:
    op.drop_table('evaluation')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_status'))

    op.drop_table('run')
    op.drop_table('task')
    op.drop_table('match')
    op.drop_table('weight')
    op.drop_table('tournament_entrant')
    op.drop_table('round')
    with op.batch_alter_table('champion_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_champion_history_kind'))

    op.drop_table('champion_history')
    op.drop_table('tournament')
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competitor_tree_hash'))
        batch_op.drop_index(batch_op.f('ix_competitor_source_digest'))

    op.drop_table('competitor')
