"""The lead unit of an evaluation: the scale the paired boss rule measures a lead in on its task.

- ``evaluation.lead_unit``: a GRPO task's weighted reward span, when every reward function declares
  its range (tasks.grpo.spec); null otherwise, and for every evaluation stored before this revision:
  the rule then divides by the larger |score|, as it always did.

Downgrading drops the column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_unit', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_column('lead_unit')
