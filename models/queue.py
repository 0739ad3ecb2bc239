"""A review queue and its immutable threshold policy versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

RECOMMENDER_KINDS = ("local", "claude", "none")


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    labels: Mapped[list[str]]
    instructions: Mapped[str] = mapped_column(Text, default="")
    reason_codes: Mapped[list[str]]
    recommender_kind: Mapped[str] = mapped_column(String(20), default="local")
    recommender_model: Mapped[str | None] = mapped_column(String(100))
    # Where reviewers send items that need a senior reviewer (a second-level queue).
    escalation_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    policies: Mapped[list[PolicyVersion]] = relationship(
        back_populates="queue", order_by="PolicyVersion.version"
    )


class PolicyVersion(Base):
    """One version of a queue's threshold policy. Never updated: a change is a new version."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("queue_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    version: Mapped[int]
    thresholds: Mapped[dict[str, float]]
    default_threshold: Mapped[float]
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    queue: Mapped[Queue] = relationship(back_populates="policies")


class QueueMember(Base):
    """A user assigned to work on a queue (reviewers review it, policy owners tune it)."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
