"""The audit log: who did what, when. Rows are only ever inserted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(200))  # "user:email", "token:prefix", "system"
    action: Mapped[str] = mapped_column(String(60), index=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    details: Mapped[dict[str, Any]]
