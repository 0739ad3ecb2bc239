"""items: index of decided items by final label and decision time, per queue and status

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 01:00:00.000000

The queue page filters decided items by the label they ended with, most recent decision
first. With ix_items_queue_decided alone, PostgreSQL walked every decided item of the
queue in decision order and dropped those with another label: a filter matching few or
none of a million decided items read them all (0.9 s). Partial, like that index: waiting
items have no final label and no entry.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIDED = sa.text("decided_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_items_queue_final_label",
        "items",
        ["queue_id", "status", "final_label", "decided_at", "id"],
        postgresql_where=DECIDED,
        sqlite_where=DECIDED,
    )


def downgrade() -> None:
    op.drop_index("ix_items_queue_final_label", table_name="items")
