"""The sweeper: re-enqueues items left pending, so every accepted item ends in a decision.

Items stay pending when Redis was unreachable at ingest, when a worker died mid-job (RQ
then marks the job failed/abandoned, but the item is still pending), or when a job was
lost. Every SWEEP_INTERVAL_SECONDS one worker host (whoever wins a Redis lock) enqueues
recommend jobs for pending items untouched for SWEEP_PENDING_AFTER_SECONDS. The recommend
job skips items no longer pending, so a spurious re-enqueue costs a little work, nothing more.
Items inside a Message Batch still in progress are not re-enqueued; their batch's poll is
revived instead (workers/claude_batch.py).
The same sweep re-enqueues decision webhook events whose delivery job was lost
(workers/webhook_jobs.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import timedelta

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Item
from models.base import utcnow
from review.db import get_database
from review.redis_conn import get_redis, get_rq_queue
from review.sealed_secrets import SecretBox
from review.services import ai_batches, webhooks
from review.services.pipeline import enqueue_recommendations
from workers import claude_batch
from workers.audit_jobs import seal_in_app
from workers.webhook_jobs import sweep_webhooks

log = logging.getLogger(__name__)

# Bounds one sweep's memory and job burst; the rest waits for the next sweep.
MAX_ITEMS_PER_SWEEP = 20_000
# Held by the sweeper thread for each sweep, and by the worker while it forks a work horse
# (workers/worker.py): a child forked while this thread was inside SQLite, Redis or logging
# would inherit their internal locks held, with no thread to release them, and hang.
SWEEP_LOCK = threading.Lock()


def sweep_once(session: Session, rq_queue: Queue, older_than_seconds: float) -> int:
    """Enqueue recommend jobs for pending items not updated for `older_than_seconds`.

    Items that a Message Batch in progress holds are not stuck but waiting for it: they
    are left alone, and the sweep only makes sure their batch is being polled (which
    revives a poll job lost with a killed worker or a flushed Redis; the poll attaches
    the answers, or writes the batch off and sends its items to people). Items of a batch
    past its give-up time count as stuck again.

    The swept items' updated_at is bumped and committed *before* enqueueing: a job that
    starts at once must not find them locked by this transaction, and a backlog that is
    merely slow is not swept again until another full cutoff has passed. Returns how
    many items were enqueued (0 if Redis refused them; they will be swept again).
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    held = ai_batches.items_in_live_batches(session, now - claude_batch.give_up_after())
    pending = list(
        session.scalars(
            select(Item.id)
            .where(Item.status == "pending", Item.updated_at < cutoff)
            .order_by(Item.id)
            .limit(MAX_ITEMS_PER_SWEEP + len(held))
        )
    )
    ids = [item_id for item_id in pending if item_id not in held][:MAX_ITEMS_PER_SWEEP]
    _keep_polling(sorted({held[item_id] for item_id in pending if item_id in held}))
    if not ids:
        return 0
    for start in range(0, len(ids), 1000):
        session.execute(
            update(Item)
            .where(Item.id.in_(ids[start : start + 1000]), Item.status == "pending")
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    if not enqueue_recommendations(rq_queue, ids):
        return 0
    log.info("re-enqueued %d pending items", len(ids))
    return len(ids)


def _keep_polling(batch_ids: list[int]) -> None:
    """Start a poll chain for each batch that has none (a live chain is left as it is)."""
    try:
        revived = [batch_id for batch_id in batch_ids if claude_batch.schedule_poll(batch_id)]
    except RedisError as exc:  # the next sweep tries again
        log.warning("cannot check that batches %s are polled: %s", batch_ids, exc)
        return
    if revived:
        log.info("polling batches %s again (their poll jobs were lost)", revived)


def lock_key(rq_queue: Queue) -> str:
    return f"{rq_queue.name}:sweeper-lock"


def acquire_sweep_lock(redis: Redis, key: str, ttl_seconds: int) -> bool:
    """True for the one caller per `ttl_seconds` that wins the lock (SET NX EX).

    The lock is not released after a sweep: it is the "one sweep per interval across all
    hosts" rule, and it expires by itself when the interval is over.
    """
    return bool(redis.set(key, secrets.token_hex(8), nx=True, ex=max(1, int(ttl_seconds))))


def sweep_if_leader(app: Flask) -> int | None:
    """Sweep once if this process wins the interval's lock. None if another holds it."""
    with app.app_context():
        rq_queue = get_rq_queue()
        interval = app.config["SWEEP_INTERVAL_SECONDS"]
        if not acquire_sweep_lock(get_redis(), lock_key(rq_queue), interval):
            return None
        older_than = app.config["SWEEP_PENDING_AFTER_SECONDS"]
        with get_database().session() as session:
            swept = sweep_once(session, rq_queue, older_than)
        # Webhook events whose delivery job was lost, on the same schedule.
        with get_database().session() as session:
            sweep_webhooks(session, rq_queue, older_than)
        # Secrets stored before sealing existed: sealed at the first sweep after an upgrade.
        with get_database().session() as session:
            if sealed := webhooks.seal_plain_secrets(session, SecretBox.from_config(app.config)):
                session.commit()
                log.info("sealed %d webhook secrets stored in the clear", sealed)
        return swept


def run_sweeper(app: Flask, stop_event: threading.Event) -> None:
    """Sweep every SWEEP_INTERVAL_SECONDS until `stop_event` is set.

    Never dies: a database or Redis error is logged and the next interval tries again.
    """
    interval = app.config["SWEEP_INTERVAL_SECONDS"]
    log.info(
        "sweeper started: every %ss, items pending > %ss",
        interval,
        app.config["SWEEP_PENDING_AFTER_SECONDS"],
    )
    while not stop_event.is_set():
        # All of this thread's database and Redis work holds SWEEP_LOCK (see its comment).
        with SWEEP_LOCK:
            try:
                sweep_if_leader(app)
            except Exception:
                log.exception("sweep failed; retrying in %ss", interval)
            # Every worker seals, leader or not: it needs no Redis, and sealers serialise on
            # the chain head themselves (review/services/audit_chain.py).
            seal_in_app(app)
        stop_event.wait(interval)
