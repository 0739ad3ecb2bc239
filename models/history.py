"""What happened to an item after it was routed: decisions, skips, escalations, undos.

Rows are only ever inserted. The review screen draws an item's history from them, and
claiming the next item skips items the reviewer has skipped before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# decided: a person approved or overrode it; skipped: a reviewer passed on it (with a
# reason); escalated: moved to the queue's second-level queue; undone: a decision was taken
# back by its author within the undo window.
EVENT_KINDS = ("decided", "skipped", "escalated", "undone")


class ItemEvent(Base):
    __tablename__ = "item_events"
    __table_args__ = (
        # The item's history, and "has this reviewer skipped this item?" for one item.
        Index("ix_item_events_item_kind_user", "item_id", "kind", "user_id"),
        # A reviewer's skips, which every claim leaves aside: a handful, where the events
        # are one per decision. Without it PostgreSQL read every event of every item once
        # per claim (5 ms at 44,000 events, and growing with the queue's history).
        Index(
            "ix_item_events_skips",
            "user_id",
            "item_id",
            postgresql_where=text("kind = 'skipped'"),
            sqlite_where=text("kind = 'skipped'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user = relationship("User")
    queue = relationship("Queue")
