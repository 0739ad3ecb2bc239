"""reviewer skips and workbench follow-ups

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by its owner this session, or removed


def downgrade() -> None:
    pass  # PLACEHOLDER
