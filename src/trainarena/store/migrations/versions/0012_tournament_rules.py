"""The rules a tournament is played under, stored with it.

- ``tournament.rules``: ``settings.rules`` as a dict, fixed when a pool tournament is created or any
  tournament is first driven; its record is replayed under them (before, under the current settings,
  so changing the boss rule made finished tournaments' pages fail). Null after upgrading: the next
  drive stores the settings' rules then, and reading falls back to the settings, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tournament', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rules', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tournament', schema=None) as batch_op:
        batch_op.drop_column('rules')
