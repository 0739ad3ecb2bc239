"""dataset snapshots

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 20:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("reviewer_identity", sa.String(length=20), nullable=False),
        sa.Column("since_snapshot_id", sa.Integer(), nullable=True),
        sa.Column("low_review_id", sa.Integer(), nullable=False),
        sa.Column("high_review_id", sa.Integer(), nullable=False),
        sa.Column("high_routing_id", sa.Integer(), nullable=False),
        sa.Column("storage_dir", sa.String(length=300), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=True),
        sa.Column("progress_rows", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("datasheet", sa.JSON(), nullable=True),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_dataset_snapshots_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_dataset_snapshots_queue_id_queues")
        ),
        sa.ForeignKeyConstraint(
            ["since_snapshot_id"],
            ["dataset_snapshots.id"],
            name=op.f("fk_dataset_snapshots_since_snapshot_id_dataset_snapshots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_snapshots")),
        sa.UniqueConstraint(
            "queue_id", "version", name=op.f("uq_dataset_snapshots_queue_id_version")
        ),
    )
    with op.batch_alter_table("dataset_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_snapshots_queue_id"), ["queue_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_snapshots_queue_id"))

    op.drop_table("dataset_snapshots")
