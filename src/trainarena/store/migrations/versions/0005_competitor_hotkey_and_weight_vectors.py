"""Hotkeys and the weights history.

- ``competitor.hotkey``: the SS58 address a competitor's weight goes to on a Bittensor subnet (optional,
  given at registration; existing competitors have none);
- ``weight_vector``: every weight vector the platform published, when, from which text and image
  tournaments, with the hybrid schedule's ratio, week, fallback share and undistributed remainder;
- ``weight_vector_entry``: each competitor's weight in a vector, heaviest first.

Downgrading drops the history and the hotkeys.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hotkey', sa.String(length=64), nullable=True))

    op.create_table(
        'weight_vector',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=False),
        sa.Column('ratio', sa.Float(), nullable=False),
        sa.Column('week', sa.Integer(), nullable=True),
        sa.Column('undistributed', sa.Float(), nullable=False),
        sa.Column('fallback', sa.Float(), nullable=False),
        sa.Column('text_tournament_id', sa.Integer(), nullable=True),
        sa.Column('image_tournament_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['image_tournament_id'], ['tournament.id'],
                                name=op.f('fk_weight_vector_image_tournament_id_tournament')),
        sa.ForeignKeyConstraint(['text_tournament_id'], ['tournament.id'],
                                name=op.f('fk_weight_vector_text_tournament_id_tournament')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_weight_vector')),
    )
    with op.batch_alter_table('weight_vector', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weight_vector_published_at'), ['published_at'], unique=False)

    op.create_table(
        'weight_vector_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('vector_id', sa.Integer(), nullable=False),
        sa.Column('competitor_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('weight', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['competitor_id'], ['competitor.id'],
                                name=op.f('fk_weight_vector_entry_competitor_id_competitor')),
        sa.ForeignKeyConstraint(['vector_id'], ['weight_vector.id'],
                                name=op.f('fk_weight_vector_entry_vector_id_weight_vector'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_weight_vector_entry')),
        sa.UniqueConstraint('vector_id', 'competitor_id', name=op.f('uq_weight_vector_entry_vector_id_competitor_id')),
    )


def downgrade() -> None:
    op.drop_table('weight_vector_entry')
    with op.batch_alter_table('weight_vector', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_weight_vector_published_at'))
    op.drop_table('weight_vector')
    with op.batch_alter_table('competitor', schema=None) as batch_op:
        batch_op.drop_column('hotkey')
