"""items: index of decided items by decision time, per queue and status

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 22:05:00.000000

The queue page browses decided and auto-approved items, most recent decision first. A
keyset walk of (queue, status, decided_at, id) reads one page's entries; without it,
PostgreSQL sorted every decided item of the queue for each page. Partial: items that wait
have no decision time and no entry.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIDED = sa.text("decided_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_items_queue_decided",
        "items",
        ["queue_id", "status", "decided_at", "id"],
        postgresql_where=DECIDED,
        sqlite_where=DECIDED,
    )


def downgrade() -> None:
    op.drop_index("ix_items_queue_decided", table_name="items")
