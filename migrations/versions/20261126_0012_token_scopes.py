"""api tokens: scopes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 21:20:00.000000

Tokens made before scopes existed keep working: each gets every scope its user's role
allows (the same default `flask tokens create` gives a new token).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of review.services.accounts.ROLE_SCOPES as of this revision.
_ROLE_SCOPES = {
    "reviewer": ["read", "decide"],
    "policy_owner": ["ingest", "read", "decide"],
    "ml": ["read", "export"],
    "admin": ["ingest", "read", "decide", "export", "admin"],
}


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=False, server_default="[]"))
    tokens = sa.table("api_tokens", sa.column("user_id"), sa.column("scopes", sa.JSON()))
    users = sa.table("users", sa.column("id"), sa.column("role"))
    for role, scopes in _ROLE_SCOPES.items():
        op.execute(
            tokens.update()
            .where(tokens.c.user_id.in_(sa.select(users.c.id).where(users.c.role == role)))
            .values(scopes=scopes)
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scopes", server_default=None, existing_type=sa.JSON())


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
