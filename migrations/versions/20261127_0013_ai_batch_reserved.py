"""ai batches: reserved_usd

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 01:25:00.000000

What a batch in progress holds against its queue's daily AI budget, as one number per
batch: the budget check (on every dispatch and queue page) sums a column instead of
reading every request entry of every batch in progress. Batches sent before this revision
ran with no reservation, so they hold nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_batches") as batch:
        batch.add_column(sa.Column("reserved_usd", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("ai_batches") as batch:
        batch.drop_column("reserved_usd")
