"""A bulk import of items from an uploaded CSV or JSON Lines file.

The file stays on disk (instance/uploads); this row holds the column mapping, where the
work has got to, the counts, and the first bad rows (the full list is a CSV beside the
upload, so a file with a million bad rows does not become a million-entry JSON value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# uploaded: waiting for its mapping; validating; validated: report ready, nothing written;
# importing; done; failed: the file could not be read at all; cancelled: discarded.
IMPORT_STATUSES = (
    "uploaded",
    "validating",
    "validated",
    "importing",
    "done",
    "failed",
    "cancelled",
)
IMPORT_FORMATS = ("csv", "jsonl")


class DataImport(Base):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(10), default="web")  # web | cli
    original_filename: Mapped[str] = mapped_column(String(255))
    file_path: Mapped[str] = mapped_column(String(1000))
    file_format: Mapped[str] = mapped_column(String(10))
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    columns: Mapped[list[str]]
    mapping: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="uploaded")
    # Progress of the running phase: bytes of the file read so far.
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    total_rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    error_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    existing_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    # The first bad rows ({"line", "external_id", "reason"}); report_path has every one.
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    report_path: Mapped[str | None] = mapped_column(String(1000))
    error_message: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]

    queue = relationship("Queue")
    created_by = relationship("User")
