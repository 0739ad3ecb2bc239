"""RQ jobs. Thin: they take ids, open a session, call services and recommenders, commit.

Jobs run inside the app context (the worker pushes it), are enqueued by import path
(review/services/pipeline.py) and are idempotent: running one twice leaves the same state.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from models import Item, Queue
from review.db import get_database
from review.redis_conn import get_rq_queue
from review.services import recommending
from workers import claude_jobs
from workers.recommenders import RecommenderUnavailable, recommender_for
from workers.recommenders.local import train_for_queue, training_due

log = logging.getLogger(__name__)

TRAIN_JOB = "workers.jobs.train_local_model"
TRAIN_JOB_TIMEOUT_SECONDS = 1800
# Held from enqueueing a training job until it finishes, so at most one is queued per queue;
# the expiry frees a lock whose job died.
TRAIN_LOCK_SECONDS = TRAIN_JOB_TIMEOUT_SECONDS + 60


def recommend_items(item_ids: list[int]) -> dict[str, int]:
    """Recommend and route every item among `item_ids` that is still pending.

    Items of one queue are scored in a single batch. Returns how many items ended in
    each status. Afterwards, enqueues training for local queues that have enough new
    decisions.
    """
    started = time.perf_counter()
    outcome: Counter[str] = Counter()
    due: list[int] = []
    calls: list[tuple[int, str]] = []
    with get_database().session() as session:
        items = recommending.lock_pending_items(session, item_ids)
        for queue_id, queue_items in _by_queue(items).items():
            queue = session.get(Queue, queue_id)
            assert queue is not None  # items.queue_id is a foreign key
            if queue.recommender_kind == "claude":
                routed, claimed = claude_jobs.dispatch(session, queue, queue_items)
                outcome += routed
                calls.extend(claimed)
                continue
            outcome += _recommend_for_queue(session, queue, queue_items)
            if queue.recommender_kind == "local" and training_due(session, queue_id):
                due.append(queue_id)
        session.commit()
    # After the commit: a call job must find its item pending and unlocked.
    claude_jobs.enqueue_calls(calls)
    for queue_id in due:
        enqueue_training(queue_id)
    log.info(
        "routed %d of %d items in %.3fs: %s",
        sum(outcome.values()),
        len(item_ids),
        time.perf_counter() - started,
        dict(outcome),
    )
    return dict(outcome)


def _by_queue(items: Sequence[Item]) -> dict[int, list[Item]]:
    grouped: dict[int, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.queue_id, []).append(item)
    return grouped


def _recommend_for_queue(session: Session, queue: Queue, items: list[Item]) -> Counter[str]:
    try:
        advice = recommender_for(session, queue).recommend(items)
    except RecommenderUnavailable as exc:
        log.warning("queue %s: %s", queue.slug, exc)
        return recommending.route_without_recommendation(
            session, queue, items, "unavailable", str(exc)
        )
    except Exception as exc:  # a failing model must not leave items pending forever
        log.exception("queue %s: recommender failed", queue.slug)
        return recommending.route_without_recommendation(
            session, queue, items, "unavailable", f"recommender failed: {exc}"
        )
    return recommending.apply_recommendations(session, queue, items, advice)


def train_lock_key(queue_id: int) -> str:
    return f"{get_rq_queue().name}:train-local:{queue_id}"


def enqueue_training(queue_id: int) -> bool:
    """Enqueue train_local_model for the queue unless one is already queued or running.

    Returns True if a job was enqueued. A Redis failure is logged, not raised: the next
    recommend job will try again.
    """
    rq_queue = get_rq_queue()
    key = train_lock_key(queue_id)
    try:
        if not rq_queue.connection.set(key, "queued", nx=True, ex=TRAIN_LOCK_SECONDS):
            return False
        try:
            rq_queue.enqueue(
                TRAIN_JOB, queue_id, job_timeout=TRAIN_JOB_TIMEOUT_SECONDS, result_ttl=24 * 3600
            )
        except RedisError:
            rq_queue.connection.delete(key)
            raise
    except RedisError as exc:
        log.warning("could not enqueue training for queue %d: %s", queue_id, exc)
        return False
    log.info("enqueued training for queue %d", queue_id)
    return True


def train_local_model(queue_id: int) -> int | None:
    """Train the queue's local model and make it active. Returns the new version number,
    or None when the queue is gone or its decisions do not pass the training gate."""
    try:
        with get_database().session() as session:
            queue = session.get(Queue, queue_id)
            if queue is None:
                log.warning("queue %d no longer exists; nothing to train", queue_id)
                return None
            model = train_for_queue(session, queue)
            return model.version if model is not None else None
    finally:
        try:
            get_rq_queue().connection.delete(train_lock_key(queue_id))
        except RedisError as exc:  # the lock expires by itself
            log.warning("could not release the training lock of queue %d: %s", queue_id, exc)
