"""Indexes for listing a tournament's runs in play order (tournament, round, match, task, run id).

``GET /v1/runs`` lists tournament runs in play order and pages them with ``after``; rounds and tasks had
an index in that order, matches and runs none: to answer one page the database sorted every run of a
round (SQLite) or of the tournament (PostgreSQL), and a cursor page cost that sort however deep it was
(``benchmarks.list_scale``, docs/benchmarks.md "Lists at scale").

- ``match(round_id, position)``, unique: a round's matches in play order (the engine numbers them
  0, 1, ... in each round, so stored rounds already satisfy it);
- ``run(task_id, id)``: a task's runs by id.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_match_round_id_position", "match", ["round_id", "position"], unique=True)
    op.create_index("ix_run_task_id_id", "run", ["task_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_run_task_id_id", table_name="run")
    op.drop_index("ix_match_round_id_position", table_name="match")
