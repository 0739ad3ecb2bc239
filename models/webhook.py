"""Decision webhooks: a queue's endpoint, the outbox of final decisions, and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# pending: waits for its next attempt (next_attempt_at); sending: an attempt is in flight
# and next_attempt_at is when it counts as lost (the worker died); delivered: the receiver
# answered 2xx; dead: every attempt failed, an admin may replay it; cancelled: the decision
# was undone before the event was ever sent.
WEBHOOK_EVENT_STATUSES = ("pending", "sending", "delivered", "dead", "cancelled")


class QueueWebhook(Base):
    """Where a queue's final decisions are sent, and the secret that signs them.

    Every delivery is signed with the secret, so it cannot be hashed: it is stored sealed
    (encrypted under a key derived from SECRET_KEY, review/sealed_secrets.py), and no API
    or page ever shows it again.
    """

    __tablename__ = "queue_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Sealed: 450 characters for the longest secret (256); see review/sealed_secrets.py.
    secret: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    queue = relationship("Queue")


class WebhookEvent(Base):
    """One final decision to tell the queue's endpoint about: the outbox row.

    Written in the transaction that makes the decision, so it exists exactly when the
    decision does. `facts` holds what the body says; `body` is the exact JSON sent, frozen
    at the first attempt so every retry and replay carries the same bytes.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        # The delivery scan: due or stale events by status.
        Index("ix_webhook_events_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_events_queue_status", "queue_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Sent as X-Webhook-Id: receivers deduplicate on it.
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    facts: Mapped[dict[str, Any]]
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    queue = relationship("Queue")
    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="event", order_by="WebhookDelivery.id"
    )


class WebhookDelivery(Base):
    """One attempt to deliver an event: where, when, and what came back."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    attempt: Mapped[int]
    url: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    event: Mapped[WebhookEvent] = relationship(back_populates="deliveries")
