"""Dataset snapshots: immutable, numbered, content-addressed exports of a queue's decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

SNAPSHOT_FORMATS = ("jsonl", "csv", "parquet")
# queued -> running -> succeeded -> expired (files deleted, metadata kept), or -> failed.
SNAPSHOT_STATUSES = ("queued", "running", "succeeded", "failed", "expired")


class DatasetSnapshot(Base):
    """One version (v1, v2, ...) of a queue's feedback dataset.

    The rows are fixed when the snapshot is created: reviews with `low_review_id <
    reviews.id <= high_review_id` that match `filters`, each with its routing as of
    `high_routing_id`. Only the job's bookkeeping (status, progress, files) changes later.
    """

    __tablename__ = "dataset_snapshots"
    __table_args__ = (UniqueConstraint("queue_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    version: Mapped[int]
    format: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    filters: Mapped[dict[str, Any]]
    reviewer_identity: Mapped[str] = mapped_column(String(20), default="pseudonymous")
    since_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshots.id"))
    # The watermark: reviews above low_review_id and up to high_review_id belong here.
    low_review_id: Mapped[int] = mapped_column(default=0)
    high_review_id: Mapped[int]
    high_routing_id: Mapped[int]
    storage_dir: Mapped[str] = mapped_column(String(300))
    total_rows: Mapped[int | None]
    progress_rows: Mapped[int] = mapped_column(default=0)
    row_count: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    datasheet: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]

    queue = relationship("Queue")
    created_by = relationship("User")
    since_snapshot: Mapped[DatasetSnapshot | None] = relationship(remote_side=[id])
