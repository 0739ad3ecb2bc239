"""ai recommendations: evidence, redacted prompt, queue AI settings, call ledger, batches

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ai_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('queue_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Double(), nullable=True),
    sa.Column('latency_ms', sa.Double(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_ai_calls_item_id_items')),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_ai_calls_queue_id_queues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_calls'))
    )
    with op.batch_alter_table('ai_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_calls_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_ai_calls_queue_created', ['queue_id', 'created_at'], unique=False)

    op.create_table('ai_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('queue_id', sa.Integer(), nullable=False),
    sa.Column('provider_batch_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('prompt_version', sa.String(length=100), nullable=False),
    sa.Column('requests', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_ai_batches_queue_id_queues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_batches')),
    sa.UniqueConstraint('provider_batch_id', name=op.f('uq_ai_batches_provider_batch_id'))
    )
    with op.batch_alter_table('ai_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_batches_queue_id'), ['queue_id'], unique=False)

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ai_daily_budget_usd', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('ai_redact', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('ai_redact_patterns', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('ai_batch', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('prompt_redacted', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.drop_column('prompt_redacted')
        batch_op.drop_column('evidence')

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('ai_batch')
        batch_op.drop_column('ai_redact_patterns')
        batch_op.drop_column('ai_redact')
        batch_op.drop_column('ai_daily_budget_usd')

    with op.batch_alter_table('ai_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ai_batches_queue_id'))
    op.drop_table('ai_batches')

    with op.batch_alter_table('ai_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_calls_queue_created')
        batch_op.drop_index(batch_op.f('ix_ai_calls_item_id'))
    op.drop_table('ai_calls')
