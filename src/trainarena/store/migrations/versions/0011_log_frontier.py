"""The transparency log's frontier: an append hashes O(log n) nodes instead of every leaf.

- ``log_state.frontier``: the hex roots of the perfect subtrees of the current tree
  (records.merkle.frontier_of). Null after upgrading: the next append derives it once from the
  stored leaves (records/log.py), so nothing is computed here.

Downgrading drops the column; the log itself is unchanged (appends then read every leaf again).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('log_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frontier', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('log_state', schema=None) as batch_op:
        batch_op.drop_column('frontier')
