"""queue webhooks: room for the sealed (encrypted) secret

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 10:20:00.000000

A webhook's secret is stored sealed (review/sealed_secrets.py): the longest secret, 256
characters, takes 450 once sealed. Secrets stored before this stay readable as they are
and are sealed the next time a delivery uses them.

Going down, sealed secrets are opened again with the server's SECRET_KEY (and
SECRET_KEY_FALLBACKS), as the code before this revision reads them as they are stored; a
secret none of those keys opens stops the downgrade, naming its queue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queue_webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(256), type_=sa.String(512), existing_nullable=False
        )


def downgrade() -> None:
    from review.config import settings_from_env
    from review.sealed_secrets import SecretBox, SecretUnreadable, is_sealed

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, queue_id, secret FROM queue_webhooks")).all()
    sealed = [row for row in rows if is_sealed(row.secret)]
    if sealed:
        box = SecretBox.from_config(settings_from_env())
        for row in sealed:
            try:
                plain = box.open(row.secret)
            except SecretUnreadable as error:
                raise RuntimeError(
                    f"the webhook secret of queue {row.queue_id} is sealed under another "
                    "SECRET_KEY: set SECRET_KEY (or SECRET_KEY_FALLBACKS) to it to downgrade"
                ) from error
            connection.execute(
                sa.text("UPDATE queue_webhooks SET secret = :plain WHERE id = :id"),
                {"plain": plain, "id": row.id},
            )
    with op.batch_alter_table("queue_webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(512), type_=sa.String(256), existing_nullable=False
        )
