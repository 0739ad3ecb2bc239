"""reviewer workbench: item events, idempotent reviews, lease heartbeat, queue-view indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:35:34.548306
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('item_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('queue_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_events_item_id_items')),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_item_events_queue_id_queues')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_item_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_events'))
    )
    with op.batch_alter_table('item_events', schema=None) as batch_op:
        batch_op.create_index('ix_item_events_item_kind_user', ['item_id', 'kind', 'user_id'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_items_queue_age', ['queue_id', 'status', 'created_at'], unique=False)
        batch_op.create_index('ix_items_leased_by', ['leased_by_id'], unique=False)
        batch_op.create_index('ix_items_queue_ai_status', ['queue_id', 'status', 'ai_status'], unique=False)

    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.create_index('ix_recommendations_confidence', ['confidence', 'item_id'], unique=False)

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_reviews_reviewer_decided', ['reviewer_id', 'decided_at'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_reviews_idempotency_key'), ['idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_reviews_idempotency_key'), type_='unique')
        batch_op.drop_index('ix_reviews_reviewer_decided')
        batch_op.drop_column('idempotency_key')

    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.drop_index('ix_recommendations_confidence')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_queue_ai_status')
        batch_op.drop_index('ix_items_leased_by')
        batch_op.drop_index('ix_items_queue_age')
        batch_op.drop_column('lease_heartbeat_at')

    with op.batch_alter_table('item_events', schema=None) as batch_op:
        batch_op.drop_index('ix_item_events_item_kind_user')

    op.drop_table('item_events')
