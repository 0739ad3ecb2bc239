"""The cost ledger of AI calls and each queue's daily budget.

Every billed call is recorded (AiCall), whether its answer was usable or not; a queue's
spend today is the sum of its calls since 00:00 UTC. Several workers may each start a
call just before the budget runs out, so a day may overshoot by at most the calls in
flight at that moment (bounded by the provider concurrency cap).

A Message Batch is billed only when it ends, so before it is sent each of its requests
reserves the most it can cost (review/services/ai_batches.py); what the queue's batches in
progress hold counts against the budget with what is spent. When the batch ends, its
billed calls replace its reservation, and what it did not use is free again that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AiCall, Queue
from models.base import utcnow
from review.domain.pricing import Usage, cost_usd
from review.services import ai_batches


@dataclass(frozen=True)
class BudgetStatus:
    """Today's spend, and what batches in progress hold, against the cap. `limit_usd`
    None means no cap (and nothing is counted as reserved)."""

    limit_usd: float | None
    spent_usd: float
    exhausted: bool
    reserved_usd: float = 0.0

    @property
    def remaining_usd(self) -> float | None:
        if self.limit_usd is None:
            return None
        return max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd)

    @property
    def exhausted_error(self) -> str:
        """The ai_error of an item sent to people because the budget is used up."""
        limit = self.limit_usd or 0.0
        error = f"budget_exhausted: the daily AI budget of ${limit:.2f} is spent"
        if self.spent_usd < limit:
            error += (
                f" or held by Message Batches in progress (${self.spent_usd:.4f} spent,"
                f" ${self.reserved_usd:.4f} held)"
            )
        return error


def start_of_day(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def spent_today(session: Session, queue_id: int, now: datetime | None = None) -> float:
    """USD spent on the queue's AI calls since 00:00 UTC."""
    total = session.scalar(
        select(func.coalesce(func.sum(AiCall.cost_usd), 0.0)).where(
            AiCall.queue_id == queue_id, AiCall.created_at >= start_of_day(now)
        )
    )
    return float(total or 0.0)


def status(session: Session, queue: Queue, now: datetime | None = None) -> BudgetStatus:
    """Whether the queue's daily AI budget is spent or held by its batches in progress.
    The queue page shows this."""
    now = now or utcnow()
    spent = spent_today(session, queue.id, now)
    limit = queue.ai_daily_budget_usd
    if limit is None:
        return BudgetStatus(None, spent, False)
    reserved = ai_batches.reserved_usd(session, queue.id, now)
    return BudgetStatus(limit, spent, spent + reserved >= limit, reserved)


def record_call(
    session: Session,
    *,
    queue_id: int,
    item_id: int | None,
    model: str,
    mode: str,
    outcome: str,
    usage: Usage,
    latency_ms: float | None = None,
) -> AiCall:
    """Add one billed call to the ledger, priced from the documented table."""
    call = AiCall(
        queue_id=queue_id,
        item_id=item_id,
        provider="anthropic",
        model=model,
        mode=mode,
        outcome=outcome,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost_usd=cost_usd(model, usage, batch=mode == "batch"),
        latency_ms=latency_ms,
    )
    session.add(call)
    return call
