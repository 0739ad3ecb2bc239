"""decision webhooks: per-queue endpoint, outbox, deliveries

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by its owner this session, or removed


def downgrade() -> None:
    pass  # PLACEHOLDER
