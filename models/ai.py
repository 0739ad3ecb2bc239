"""What calls to a paid AI provider cost, and the provider batches in flight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AiCall(Base):
    """One billed request to an AI provider, successful or not.

    The ledger behind the daily budget: an answer that failed validation was still paid for.
    """

    __tablename__ = "ai_calls"
    __table_args__ = (Index("ix_ai_calls_queue_created", "queue_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(20))  # interactive | batch
    outcome: Mapped[str] = mapped_column(String(20))  # ok | invalid | refusal | truncated
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    cache_read_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float | None]
    latency_ms: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AiBatch(Base):
    """A Message Batch submitted for a queue in batch mode, polled until it ends.

    `requests` maps each request's custom_id to its item id and attempt number, with what
    reading the answer later needs: the labels, the item text as sent and the prompt as it
    left (workers/recommenders/claude.py `batch_entry`).
    """

    __tablename__ = "ai_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    provider_batch_id: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")  # | ended
    model: Mapped[str] = mapped_column(String(100))
    prompt_version: Mapped[str] = mapped_column(String(100))
    requests: Mapped[dict[str, Any]]
    # The most its requests can cost, held against the queue's daily AI budget while the
    # batch is in progress (review/services/ai_batches.py reserved_usd).
    reserved_usd: Mapped[float] = mapped_column(default=0.0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
