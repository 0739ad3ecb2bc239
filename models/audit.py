"""The audit log: who did what, when. Rows are only ever inserted, then sealed once.

Writers insert events with no seal (seq, prev_hash, hash are NULL). A sealing step
(review/services/audit_chain.py) later gives each committed event its position in the
chain and its hash, once; the content columns never change after the insert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # The admin search filtered by queue, newest first (keyset on id).
        Index("ix_audit_events_queue_id_id", "queue_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(200))  # "user:email", "token:prefix", "system"
    action: Mapped[str] = mapped_column(String(60), index=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    details: Mapped[dict[str, Any]]
    # The seal: position in the chain (1, 2, 3 ... no gaps), the previous event's hash and
    # this event's hash over its canonical form (review/domain/audit_chain.py). NULL until
    # sealed; unique, so two sealers can never give two events the same position.
    seq: Mapped[int | None] = mapped_column(unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The one row saying where the sealed chain ends. Only the sealer writes it.

    Its row lock is what serialises sealers (never the writers of events), and verify
    compares it with the last sealed event, so deleting the newest events is caught too.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None]
