"""Handing pending items to the workers.

Enqueueing happens after the items are committed, and it may fail (Redis down): that is
fine, the sweeper (workers/sweeper.py) re-enqueues items left pending. Jobs are named by
import path so this layer never imports the workers package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.exceptions import RedisError
from rq import Queue

log = logging.getLogger(__name__)

RECOMMEND_JOB = "workers.jobs.recommend_items"
# Items per job: amortises job overhead and lets the recommender score a batch at once.
ITEMS_PER_JOB = 500
JOB_TIMEOUT_SECONDS = 600


def enqueue_recommendations(rq_queue: Queue, item_ids: Sequence[int]) -> bool:
    """Enqueue recommend jobs for these items. Returns False (and logs) if Redis is unreachable."""
    ids = list(item_ids)
    try:
        for start in range(0, len(ids), ITEMS_PER_JOB):
            rq_queue.enqueue(
                RECOMMEND_JOB,
                ids[start : start + ITEMS_PER_JOB],
                job_timeout=JOB_TIMEOUT_SECONDS,
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
            )
    except RedisError as exc:
        log.warning("could not enqueue %d items (%s); the sweeper will retry", len(ids), exc)
        return False
    return True
