"""Registered models can be deleted, and their bytes count against their key's quota.

- ``registered_model.deleted_at`` and ``deleted_by_key_id``: when a model's files were removed and by
  which key (null: on the server's command line). The row stays, so that the jobs, runs and signed
  records naming the model stay true. Null after upgrading: every model stored before is alive.
- ``registered_model.size_bytes``: the bytes of the model's files as registered, which a customer key's
  ``api.model_quota_bytes`` sums. Filled when upgrading from the sizes each model's card lists (the
  registry wrote them when it hashed the files); a card without them counts 0.

Downgrading drops the three columns: deleted models then read as alive, though their files are gone
(their downloads answer 409 ``model_files_missing``, as for any folder that is gone).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table as of this revision, as far as the backfill reads and writes it (JSON decoded on each backend).
_MODELS = sa.table('registered_model', sa.column('id', sa.String()), sa.column('card', sa.JSON()),
                   sa.column('size_bytes', sa.BigInteger()))  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('size_bytes', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('deleted_by_key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_registered_model_deleted_by_key_id_api_key'), 'api_key',
                                    ['deleted_by_key_id'], ['id'])  # fmt: skip
    connection = op.get_bind()
    for model_id, card in connection.execute(sa.select(_MODELS.c.id, _MODELS.c.card)).all():
        size = sum(int(file.get('size', 0)) for file in (card or {}).get('files', []))
        if size:
            connection.execute(_MODELS.update().where(_MODELS.c.id == model_id).values(size_bytes=size))


def downgrade() -> None:
    with op.batch_alter_table('registered_model', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_registered_model_deleted_by_key_id_api_key'), type_='foreignkey')
        batch_op.drop_column('deleted_by_key_id')
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('size_bytes')
