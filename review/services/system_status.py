"""What is down, for the banner on reviewer pages: Redis, the workers, or the AI.

Every check fails soft: a broken background part produces a message, never an exception,
so a Redis outage cannot break the page that reports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue as RqQueue
from rq import Worker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, Queue

log = logging.getLogger(__name__)

# "Recent" for the AI check: items routed in this window.
AI_WINDOW = timedelta(minutes=15)
# The AI counts as down when at least this share of recent items got no answer from it.
AI_DOWN_SHARE = 0.5


@dataclass(frozen=True)
class SystemStatus:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _workers_alive(rq_queue: RqQueue, now: datetime) -> bool:
    """True if some RQ worker listening on our queue has a live heartbeat in Redis."""
    for worker in Worker.all(queue=rq_queue):
        # An expired worker key makes Worker.all drop it; the heartbeat check covers a
        # worker that died without its key expiring yet.
        beat = worker.last_heartbeat
        if beat is None or now - beat.replace(tzinfo=now.tzinfo) < timedelta(
            seconds=worker.worker_ttl + 60
        ):
            return True
    return False


def _redis_and_worker_problems(redis: Redis, rq_queue: RqQueue, now: datetime) -> list[str]:
    try:
        redis.ping()
        if not _workers_alive(rq_queue, now):
            return [
                "The background worker is not running: new items are not getting AI "
                "recommendations. Items already waiting can be reviewed as usual."
            ]
    except (RedisError, OSError) as exc:
        log.warning("status check: Redis unreachable (%s)", exc)
        return [
            "The job queue (Redis) cannot be reached: new items wait for AI recommendations. "
            "Reviewing works as usual."
        ]
    return []


def _ai_problem(session: Session, queue: Queue, now: datetime) -> str | None:
    rows = dict(
        session.execute(
            select(Item.ai_status, func.count())
            .where(Item.queue_id == queue.id, Item.routed_at >= now - AI_WINDOW)
            .group_by(Item.ai_status)
        ).all()
    )
    unavailable = rows.get("unavailable", 0)
    total = sum(rows.values())
    if unavailable and unavailable >= AI_DOWN_SHARE * total:
        return (
            f"The AI is unavailable: {unavailable} of the last {total} items in this queue "
            "got no recommendation. Decide them yourself; they are marked “No AI "
            "recommendation”."
        )
    return None


def system_status(
    session: Session, queue: Queue | None, redis: Redis, rq_queue: RqQueue, now: datetime
) -> SystemStatus:
    """Plain-language problems with Redis, the workers and (for a queue) the AI."""
    problems = _redis_and_worker_problems(redis, rq_queue, now)
    if queue is not None and (ai := _ai_problem(session, queue, now)):
        problems.append(ai)
    return SystemStatus(problems)
