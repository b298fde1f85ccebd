"""Whether a crowning's models are owed to the registry.

- ``champion_history.models_due``: set in the transaction that crowns a champion when
  ``registry.register_champions`` is on. The registration follows that transaction, so a process that
  dies in between (or a full disk) leaves the crowning without its models; the heal registers every
  crowning that is due and not registered, oldest first, where it could only take each kind's latest
  before (a champion crowned since made the earlier one's registration lost for good). False after
  upgrading: the crownings stored before are healed as before, the reigning ones only.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('champion_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('models_due', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('champion_history', schema=None) as batch_op:
        batch_op.drop_column('models_due')
