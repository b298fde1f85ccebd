"""Indexes for the newest-first lists of uploaded files and registered models.

``GET /v1/files`` and ``GET /v1/models`` page by ``created_at`` (newest first, ``after`` a row); jobs
had an index on it, files and models sorted every row of the table to answer a page (at 10,000 models
a page of 50 cost 5x a page of a 100-model store: ``benchmarks.list_scale``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (("ix_uploaded_file_created_at", "uploaded_file"), ("ix_registered_model_created_at", "registered_model"))


def upgrade() -> None:
    for name, table in INDEXES:
        op.create_index(name, table, ["created_at"])


def downgrade() -> None:
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
