"""items: copy of the AI label for fast queue filters

The queue page filtered by AI label or sorted by confidence joined a million
recommendations. Items now carry copies of their recommendation's label and confidence
(filled in here for existing rows) with composite indexes for each filter and sort, and
the recommendations' confidence index, which only served that join, goes.

On PostgreSQL, extended statistics on (queue_id, status[, ai_label]) let the planner
estimate a queue's size per status well; the queue page shows that estimate once an exact
count would pass its cap (review/services/counting.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATISTICS = {
    "st_items_queue_status": "queue_id, status",
    "st_items_queue_status_label": "queue_id, status, ai_label",
}


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ai_label", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("ai_confidence", sa.Double(), nullable=True))

    # One statement for every existing item; runs the same on SQLite and PostgreSQL.
    op.execute(
        "UPDATE items SET "
        "ai_label = (SELECT r.label FROM recommendations r WHERE r.item_id = items.id), "
        "ai_confidence = (SELECT r.confidence FROM recommendations r WHERE r.item_id = items.id) "
        "WHERE EXISTS (SELECT 1 FROM recommendations r WHERE r.item_id = items.id)"
    )

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_queue_age")
        batch_op.create_index(
            "ix_items_queue_age", ["queue_id", "status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_items_queue_label",
            ["queue_id", "status", "ai_label", "priority", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_items_queue_label_age",
            ["queue_id", "status", "ai_label", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_items_queue_confidence", ["queue_id", "status", "ai_confidence", "id"], unique=False
        )

    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.drop_index("ix_recommendations_confidence")

    if op.get_bind().dialect.name == "postgresql":
        for name, columns in STATISTICS.items():
            op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} (mcv) ON {columns} FROM items")
        op.execute("ANALYZE items")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")

    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recommendations_confidence", ["confidence", "item_id"], unique=False
        )

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_queue_confidence")
        batch_op.drop_index("ix_items_queue_label_age")
        batch_op.drop_index("ix_items_queue_label")
        batch_op.drop_index("ix_items_queue_age")
        batch_op.create_index(
            "ix_items_queue_age", ["queue_id", "status", "created_at"], unique=False
        )
        batch_op.drop_column("ai_confidence")
        batch_op.drop_column("ai_label")
