"""items: which load of the review page holds the lease

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 19:40:00.000000

A review page gives its items back when it goes (a release sent as the page is hidden).
On a reload the new page's request could be answered first: it resumed the reviewer's
leases, then the old page's release took them away, and the first decision on the new
page was refused ("you no longer hold this item"). Each load of the page now stamps the
leases it shows with an id of its own, and a release from another load leaves them be.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("lease_page", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("lease_page")
