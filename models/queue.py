"""A review queue and its immutable threshold policy versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false, text, true
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
    # Labels no longer offered to reviewers or accepted on new items, kept because past
    # decisions carry them. A label with decisions is retired, never deleted or renamed.
    retired_labels: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    # Payload keys the reviewer sees first, in this order; the rest follow as they come.
    display_fields: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    recommender_kind: Mapped[str] = mapped_column(String(20), default="local")
    recommender_model: Mapped[str | None] = mapped_column(String(100))
    # Where reviewers send items that need a senior reviewer (a second-level queue).
    escalation_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    # AI settings (review/services/ai_settings.py validates them). A daily spend cap in USD
    # for a paid recommender (None: no cap); PII redaction before a payload leaves for a
    # provider, with extra regular expressions of the queue's own; batch mode sends items
    # through the provider's batch API at half price instead of one call each.
    ai_daily_budget_usd: Mapped[float | None]
    ai_redact: Mapped[bool] = mapped_column(default=True, server_default=true())
    ai_redact_patterns: Mapped[list[str] | None]
    ai_batch: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Four eyes: a policy version takes effect only once a second policy owner approves it.
    require_four_eyes: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How long an item may wait for a person; the dashboard draws it as a line.
    review_sla_hours: Mapped[float] = mapped_column(default=24.0, server_default="24")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    policies: Mapped[list[PolicyVersion]] = relationship(
        back_populates="queue", order_by="PolicyVersion.version"
    )

    @property
    def all_labels(self) -> list[str]:
        """Every label the queue has had: those offered now, then the retired ones (which
        past decisions, and so filters and datasets, still name)."""
        return [*self.labels, *(self.retired_labels or [])]


# pending_approval: waits for a second policy owner (four eyes); active: the one in force
# (exactly one per queue); retired: was active once; rejected: the second owner said no.
POLICY_STATUSES = ("pending_approval", "active", "retired", "rejected")


class PolicyVersion(Base):
    """One version of a queue's threshold policy.

    The rules (thresholds, audit rate, recalibration) are never updated: a change is a new
    version. Only the lifecycle columns (status, approval, activation) move.
    """

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("queue_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    version: Mapped[int]
    thresholds: Mapped[dict[str, float]]
    default_threshold: Mapped[float]
    # Share of would-be auto-approvals sent to review instead, blind (0 = no audit).
    audit_rate: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # Fitted confidence recalibration applied before the thresholds, or None (raw scores).
    recalibration: Mapped[dict[str, Any] | None]
    note: Mapped[str] = mapped_column(Text, default="")
    # The version this one copies when it was made by a rollback.
    rollback_of: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]

    queue: Mapped[Queue] = relationship(back_populates="policies")


class QueueMember(Base):
    """A user assigned to work on a queue (reviewers review it, policy owners tune it)."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
