"""routing records: index on (item_id, id)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 07:00:00.000000

Every reader of routing records wants an item's latest one (the highest id): the
dataset export probes it for each of a million rows, the policy statistics, the webhook
payload and the item trail ask for it too. On (item_id) alone PostgreSQL fetched the
item's records and sorted them, per item; on (item_id, id) it reads the last index
entry. The new index serves lookups by item_id alone as well, so it replaces the old one.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_routing_records_item_id_id", "routing_records", ["item_id", "id"])
    op.drop_index("ix_routing_records_item_id", table_name="routing_records")


def downgrade() -> None:
    op.create_index("ix_routing_records_item_id", "routing_records", ["item_id"])
    op.drop_index("ix_routing_records_item_id_id", table_name="routing_records")
