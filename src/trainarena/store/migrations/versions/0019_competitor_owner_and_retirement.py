"""Competitors record the key that registered them, and can be retired.

- ``competitor.owner_key_id``: the competitor key that registered it through the API, which may retire
  it (null: registered on the command line or with an operator's key). Null after upgrading: nobody
  knows who registered the rows stored before, so only an operator retires them.
- ``competitor.retired_at`` and ``retired_by_key_id``: when it was retired and by which key (null: on
  the server's command line). A retired competitor enters no tournament created afterwards; the row
  stays, as the tournaments, runs and signed records naming it do. Null after upgrading: every
  competitor stored before is active.

Downgrading drops the three columns: retired competitors then enter new tournaments again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_key_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('retired_by_key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_competitor_owner_key_id_api_key'), 'api_key', ['owner_key_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_competitor_retired_by_key_id_api_key'), 'api_key',
                                    ['retired_by_key_id'], ['id'])  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_competitor_retired_by_key_id_api_key'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_competitor_owner_key_id_api_key'), type_='foreignkey')
        batch_op.drop_column('retired_by_key_id')
        batch_op.drop_column('retired_at')
        batch_op.drop_column('owner_key_id')
