"""items: full-text index of payload values (PostgreSQL)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 01:20:00.000000

The queue page searches items by the words of their payloads (services/payload_search.py).
A GIN index of the same expression lets PostgreSQL find the matching items of a million
without reading each payload. SQLite has no such index: its search reads the payloads.

Building it reads every payload once: on a large table, expect it to take a while (and
to hold off writes to items meanwhile, as any CREATE INDEX does in a transaction).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As PAYLOAD_WORDS_SQL writes it, written out here: a migration stays as it was run.
PAYLOAD_WORDS = "json_to_tsvector('simple'::regconfig, payload, '[\"string\", \"numeric\"]'::jsonb)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_items_payload_words ON items USING gin (({PAYLOAD_WORDS}))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_items_payload_words")
