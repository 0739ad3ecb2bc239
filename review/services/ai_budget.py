"""The cost ledger of AI calls and each queue's daily budget.

Every billed call is recorded (AiCall), whether its answer was usable or not; a queue's
spend today is the sum of its calls since 00:00 UTC. Several workers may each start a
call just before the budget runs out, so a day may overshoot by at most the calls in
flight at that moment (bounded by the provider concurrency cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AiCall, Queue
from models.base import utcnow
from review.domain.pricing import Usage, cost_usd


@dataclass(frozen=True)
class BudgetStatus:
    """Today's spend against the cap. `limit_usd` None means no cap."""

    limit_usd: float | None
    spent_usd: float
    exhausted: bool

    @property
    def remaining_usd(self) -> float | None:
        return None if self.limit_usd is None else max(0.0, self.limit_usd - self.spent_usd)


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
    """Whether the queue's daily AI budget is spent. The queue page shows this."""
    spent = spent_today(session, queue.id, now)
    limit = queue.ai_daily_budget_usd
    return BudgetStatus(limit, spent, limit is not None and spent >= limit)


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
