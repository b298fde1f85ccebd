"""The copy check of registration (submissions.copies), kept with each competitor.

- ``competitor.similar_to``: the registered competitor whose code was closest at registration;
- ``competitor.similarity``: that closest similarity (winnowed fingerprints' overlap, 0 to 1);
- ``competitor.copy_flag``: why the competitor is flagged for the operator (tree_hash, source_digest or
  near_duplicate); null when it is not. Competitors registered before this revision have none of them.

Downgrading drops the three columns.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('similar_to', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('similarity', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('copy_flag', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.drop_column('copy_flag')
        batch_op.drop_column('similarity')
        batch_op.drop_column('similar_to')
