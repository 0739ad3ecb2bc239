"""An item under review, with its AI recommendation, routing history and human review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# pending: waiting for a recommendation and routing; needs_review: queued for a person;
# auto_approved: the policy approved it; decided: a person approved or overrode it.
ITEM_STATUSES = ("pending", "needs_review", "auto_approved", "decided")
# ok: a recommendation was made; none: the recommender had nothing to say (e.g. untrained);
# unavailable: the AI failed; budget_exhausted: the queue's AI budget is spent.
AI_STATUSES = ("ok", "none", "unavailable", "budget_exhausted")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("queue_id", "external_id"),
        # Serves "claim the next item": status filter, then priority and age order.
        Index("ix_items_claim", "queue_id", "status", "priority", "id"),
        Index("ix_items_status_created", "status", "created_at"),
        # The queue page sorted or filtered by age, at a million items; id breaks ties for
        # keyset pages.
        Index("ix_items_queue_age", "queue_id", "status", "created_at", "id"),
        # The queue page filtered by AI label (default sort, and oldest/newest first) and
        # sorted or banded by confidence, from the copies below: no join at a million items.
        Index("ix_items_queue_label", "queue_id", "status", "ai_label", "priority", "id"),
        Index("ix_items_queue_label_age", "queue_id", "status", "ai_label", "created_at", "id"),
        Index("ix_items_queue_confidence", "queue_id", "status", "ai_confidence", "id"),
        # "The item this reviewer holds" (resume after reload, heartbeats), at any queue size.
        Index("ix_items_leased_by", "leased_by_id"),
        # The queue page's "AI unavailable" and "no AI recommendation" filters: rare rows.
        Index("ix_items_queue_ai_status", "queue_id", "status", "ai_status"),
        # The queue page's decided and auto-approved items, most recent decision first.
        Index(
            "ix_items_queue_decided",
            "queue_id",
            "status",
            "decided_at",
            "id",
            postgresql_where=text("decided_at IS NOT NULL"),
            sqlite_where=text("decided_at IS NOT NULL"),
        ),
        # The same, filtered by the label they ended with (migration 0019).
        Index(
            "ix_items_queue_final_label",
            "queue_id",
            "status",
            "final_label",
            "decided_at",
            "id",
            postgresql_where=text("decided_at IS NOT NULL"),
            sqlite_where=text("decided_at IS NOT NULL"),
        ),
        # The words of the payload's values, for the queue page's search (PostgreSQL only,
        # migration 0020; the expression is services/payload_search.py's).
        Index(
            "ix_items_payload_words",
            text(
                "json_to_tsvector('simple'::regconfig, payload, "
                "'[\"string\", \"numeric\"]'::jsonb)"
            ),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    payload_sha256: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    final_label: Mapped[str | None] = mapped_column(String(100))
    ai_status: Mapped[str | None] = mapped_column(String(20))
    ai_error: Mapped[str | None] = mapped_column(Text)
    # Copies of the recommendation's label and confidence, for the queue page's filters and
    # sorts. routing.attach_recommendation, the one way a recommendation is attached, sets
    # them together with the recommendation; a recommendation is never changed afterwards.
    ai_label: Mapped[str | None] = mapped_column(String(100))
    ai_confidence: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    routed_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    leased_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_started_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    # The last sign of life from the reviewer's open page (it extends lease_expires_at).
    lease_heartbeat_at: Mapped[datetime | None]
    # Which load of the review page holds the lease (a random id per load; None for a lease
    # taken by a page's later requests). A page that goes sends a release for its items;
    # the release counts only if no later load of the page took them over (a reload's
    # request can be answered before the old page's release arrives).
    lease_page: Mapped[str | None] = mapped_column(String(32))

    queue = relationship("Queue")
    recommendation: Mapped[Recommendation | None] = relationship(back_populates="item")
    routings: Mapped[list[RoutingRecord]] = relationship(
        back_populates="item", order_by="RoutingRecord.id"
    )
    review: Mapped[Review | None] = relationship(back_populates="item")


class Recommendation(Base):
    """The AI's advice for an item: at most one per item, so the recommend job is idempotent."""

    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), unique=True)
    source: Mapped[str] = mapped_column(String(20))  # local | claude | external
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(100))
    confidence: Mapped[float]
    rationale: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float | None]
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    cache_read_tokens: Mapped[int | None]
    cost_usd: Mapped[float | None]
    # Quotes from the payload that support the label (the reviewer UI highlights them).
    evidence: Mapped[list[str] | None]
    # The prompt as sent to an external provider, after PII redaction: what left, for audit.
    prompt_redacted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[Item] = relationship(back_populates="recommendation")


class RoutingRecord(Base):
    """Why an item went where it went: the policy version and threshold applied."""

    __tablename__ = "routing_records"
    # Readers want an item's latest record: the last entry of (item_id, id), no sort.
    __table_args__ = (Index("ix_routing_records_item_id_id", "item_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    route: Mapped[str] = mapped_column(String(20))  # auto_approve | review
    threshold: Mapped[float | None]
    confidence: Mapped[float | None]
    reason: Mapped[str] = mapped_column(String(200))
    # The chance this item was sent to a person under the policy: 1 below the threshold,
    # the audit rate for an audit sample, 0 when auto-approved unsampled. Estimates weight
    # each labeled item by its inverse (review/domain/estimates.py).
    inclusion_probability: Mapped[float] = mapped_column(default=1.0, server_default="1")
    # Drawn by audit sampling although the policy would have auto-approved it. Never shown
    # to reviewers: the audit is blind.
    audit: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[Item] = relationship(back_populates="routings")
    policy_version = relationship("PolicyVersion")


class Review(Base):
    """A person's decision on an item. One per item: the unique key forbids double decisions."""

    __tablename__ = "reviews"
    # A reviewer's own numbers (decisions today, time per item) read this index.
    __table_args__ = (Index("ix_reviews_reviewer_decided", "reviewer_id", "decided_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), unique=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # approved | overridden
    ai_label: Mapped[str | None] = mapped_column(String(100))
    final_label: Mapped[str] = mapped_column(String(100))
    reason_code: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text, default="")
    seconds_on_item: Mapped[float | None]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Sent with each submit from the review screen, so a repeated submit is recognised.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    item: Mapped[Item] = relationship(back_populates="review")
    reviewer = relationship("User")


class ModelVersion(Base):
    """A trained local model for a queue. The artifact is a pickled scikit-learn pipeline."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("queue_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    trained_on: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    is_active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
