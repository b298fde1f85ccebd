"""Audit runs are their own origin, and name the run they re-measure.

``trainarena audit RUN_ID`` stored its re-run as an ad-hoc run: `runs show` called it a `trainarena run`
and the task's leaderboard counted it as one more run of the competitor (one that scored better would
have become its best). An audit is a re-measurement, not a competitor's run:

- ``run.origin`` takes ``audit`` for them;
- ``run.audit_of_id``: the audited run (null for every other run, and once that run is deleted).

Audits stored before this revision are found by their folder, ``audits/run-N-M`` (N audited, M the
audit run itself), which the audit gives every run it makes, and converted. Downgrading makes them
ad-hoc runs again and drops the column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The folder records.audit gives an audit run (as of this revision): audits/run-<audited>-<audit run>/.
AUDIT_FOLDER = re.compile(r"[\\/]audits[\\/]run-(\d+)-(\d+)(?:[\\/]|$)")


def upgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_of_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_run_audit_of_id_run'), 'run', ['audit_of_id'], ['id'], ondelete='SET NULL')
    connection = op.get_bind()
    run_ids = set(connection.execute(sa.text("SELECT id FROM run")).scalars())
    adhoc = connection.execute(sa.text(
        "SELECT run.id, run_attempt.log_path FROM run JOIN run_attempt ON run_attempt.run_id = run.id "
        "WHERE run.origin = 'adhoc' AND run_attempt.log_path IS NOT NULL"
    )).all()  # fmt: skip
    for run_id, log_path in adhoc:
        found = AUDIT_FOLDER.search(log_path)
        if found is not None and int(found[2]) == run_id and int(found[1]) in run_ids:
            connection.execute(sa.text("UPDATE run SET origin = 'audit', audit_of_id = :audited WHERE id = :id"),
                               {"audited": int(found[1]), "id": run_id})  # fmt: skip


def downgrade() -> None:
    op.execute("UPDATE run SET origin = 'adhoc' WHERE origin = 'audit'")
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_run_audit_of_id_run'), type_='foreignkey')
        batch_op.drop_column('audit_of_id')
