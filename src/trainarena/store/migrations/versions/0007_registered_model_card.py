"""The model card's facts on each registered model.

- ``registered_model.card``: what the model's card states (the script's ``repo@commit``, the license,
  the library, how the score was measured), so listings show it without reading the folder.

Downgrading drops the column (the cards stay in the model folders).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.drop_column('card')
