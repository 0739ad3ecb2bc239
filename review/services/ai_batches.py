"""The Message Batches a queue has in flight, as the database knows them.

The ai_batches table, not Redis, is the record of what was sent: an item in a batch that
is still in progress is not sent again, and a batch whose poll job was lost (worker
killed, Redis restarted) is found here again. None of these functions commits.

Each request also holds the most it can cost (`reserved_usd` of its entry, summed into the
batch's reserved_usd column) against the queue's daily AI budget while its batch is in
progress (review/services/ai_budget.py).
Once the batch ends, in whatever state, it holds nothing: the calls it billed are in the
ledger instead. A batch still in progress after GIVE_UP_HOURS was lost (a batch ends
within 24 hours) and holds nothing either, so a reservation never holds the budget forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AiBatch, Item, Queue

IN_PROGRESS = "in_progress"
ENDED = "ended"
# A batch ends within 24 hours; one in progress for longer than this (with margin) was
# lost. The default of AI_BATCH_GIVE_UP_HOURS, and how long a reservation holds at most.
GIVE_UP_HOURS = 30


def _held(session: Session, *conditions: Any) -> dict[int, int]:
    found: dict[int, int] = {}
    for batch_id, requests in session.execute(
        select(AiBatch.id, AiBatch.requests).where(AiBatch.status == IN_PROGRESS, *conditions)
    ):
        for entry in requests.values():
            found[int(entry["item_id"])] = batch_id
    return found


def in_flight_items(session: Session, queue_id: int) -> dict[int, int]:
    """{item id: ai_batches id} for the items of the queue's batches still in progress."""
    return _held(session, AiBatch.queue_id == queue_id)


def items_in_live_batches(session: Session, sent_after: datetime) -> dict[int, int]:
    """{item id: ai_batches id} for every queue's batches in progress sent after `sent_after`.

    A batch older than that should have been written off by its poll; its items are not
    counted as held, so whoever asks (the sweeper) treats them as stuck.
    """
    return _held(session, AiBatch.created_at > sent_after)


def reserved_usd(session: Session, queue_id: int, now: datetime) -> float:
    """USD the queue's batches in progress (sent within GIVE_UP_HOURS) hold against its
    budget: the sum of their requests' worst-case costs."""
    held = session.scalar(
        select(func.coalesce(func.sum(AiBatch.reserved_usd), 0.0)).where(
            AiBatch.queue_id == queue_id,
            AiBatch.status == IN_PROGRESS,
            AiBatch.created_at > now - timedelta(hours=GIVE_UP_HOURS),
        )
    )
    return float(held or 0.0)


def items_to_submit(session: Session, queue: Queue, limit: int) -> list[Item]:
    """The queue's pending items that no batch in progress holds, oldest first."""
    held = set(in_flight_items(session, queue.id))
    items = session.scalars(
        select(Item)
        .where(Item.queue_id == queue.id, Item.status == "pending")
        .order_by(Item.id)
        .limit(limit + len(held))
    )
    return [item for item in items if item.id not in held][:limit]


def record_batch(
    session: Session,
    *,
    queue_id: int,
    provider_batch_id: str,
    model: str,
    prompt_version: str,
    requests: Mapping[str, dict[str, Any]],
) -> AiBatch:
    """Remember a submitted batch and which item each of its custom_ids stands for."""
    batch = AiBatch(
        queue_id=queue_id,
        provider_batch_id=provider_batch_id,
        status=IN_PROGRESS,
        model=model,
        prompt_version=prompt_version,
        requests=dict(requests),
        reserved_usd=sum(float(entry.get("reserved_usd") or 0.0) for entry in requests.values()),
    )
    session.add(batch)
    session.flush()
    return batch


def lock_open_batch(session: Session, batch_id: int) -> AiBatch | None:
    """The batch if it is still in progress, locked until the transaction ends, so two
    poll jobs cannot both attach its results."""
    return session.scalar(
        select(AiBatch)
        .where(AiBatch.id == batch_id, AiBatch.status == IN_PROGRESS)
        .with_for_update()
    )


def open_batch_ids(session: Session) -> list[int]:
    """Every batch still in progress, for whoever resumes polling."""
    return list(
        session.scalars(
            select(AiBatch.id).where(AiBatch.status == IN_PROGRESS).order_by(AiBatch.id)
        )
    )
