"""A queued job's own time to wait for, stored with it.

- ``job.not_before``: the store's time before which no worker claims the queued job; set when the
  platform could not start its try (a full disk, no cluster node), from the job's platform faults in a
  row (``jobs.platform_retry_seconds`` doubled up to ``jobs.platform_retry_max_seconds``), and cleared
  when a try starts. Before, the wait was kept in the memory of the worker that met the fault: another
  worker, or the same service restarted, claimed the job again at once. Null after upgrading: every
  queued job may be claimed, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('not_before')
