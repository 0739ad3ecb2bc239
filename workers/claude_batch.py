"""Claude in batch mode: items collected and sent through the Message Batches API.

For a queue with `ai_batch` on, at half the price of one call per item:
1. recommend_items -> claude_jobs.dispatch -> `collect`: the items stay pending and one
   `submit_batch` job per queue is scheduled AI_BATCH_COLLECT_SECONDS later, so items
   arriving meanwhile go in the same batch.
2. submit_batch sends the queue's pending items that no batch in progress holds (up to
   AI_BATCH_MAX_ITEMS) as one batch, records it in ai_batches and schedules `poll_batch`.
   Transient errors are retried by RQ; when retries run out the items go to people.
   A batch is billed only when it ends, so under a daily budget each request first
   reserves the most it can cost (its prompt's size bound and a full max_tokens answer,
   at the batch price); items that do not fit in what is left go to people as
   budget_exhausted. The reservation holds while the batch is in progress: once it ends
   (answered, written off), the billed calls alone count (review/services/ai_batches.py).
3. poll_batch asks for the batch's status every AI_BATCH_POLL_SECONDS; once it has ended,
   each result is matched to its item by custom_id and attached exactly as a call's answer
   would be (same validation, cost at the batch price). A request that errored on the
   provider's side (overloaded, api_error...) gets one more attempt: its item stays
   pending, marked RETRYING, and goes through the recommend job again (the next batch,
   or a single call if the queue left batch mode). A second error, an error no retry
   can fix (invalid request...), and expired or canceled requests send the item to
   people with the reason kept.

Nothing is lost with Redis: the batch and its items are in the database. The sweeper
leaves the items of a batch in progress pending and makes sure that batch is polled,
which revives a poll job lost with a killed worker or a flushed Redis; other pending
items it re-enqueues (`collect` also makes sure a batch holding any of them is polled).
Polling is idempotent: the batch row is locked while its results are attached and marked
ended in the same transaction, so a second run attaches nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy.orm import Session

from models import AiBatch, Item, Queue
from models.base import utcnow
from review.db import get_database
from review.redis_conn import get_redis, get_rq_queue
from review.services import ai_batches, ai_budget, pipeline, recommending
from workers import claude_jobs
from workers.recommenders import claude

log = logging.getLogger(__name__)

SUBMIT_JOB = "workers.claude_batch.submit_batch"
POLL_JOB = "workers.claude_batch.poll_batch"
# A request that errored for a transient reason is sent once more; then it goes to people.
MAX_BATCH_ATTEMPTS = 2
# ai_status of a pending item whose batch request errored and waits for its next attempt.
RETRYING = "batch_retry"


def _config(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def collect_seconds() -> float:
    return _config("AI_BATCH_COLLECT_SECONDS", 60)


def poll_seconds() -> float:
    return _config("AI_BATCH_POLL_SECONDS", 60)


def max_items() -> int:
    # The API takes up to 100,000 requests a batch; a smaller batch keeps the row that
    # remembers its prompts (for audit) and the transaction that attaches its results small.
    return int(_config("AI_BATCH_MAX_ITEMS", 1000))


def give_up_after() -> timedelta:
    # A batch ends within 24 hours; past this, a batch that cannot be read is written off.
    return timedelta(hours=_config("AI_BATCH_GIVE_UP_HOURS", ai_batches.GIVE_UP_HOURS))


def submit_key(queue_id: int) -> str:
    return f"{claude_jobs.prefix()}:batch-submit:{queue_id}"


def submitting_key(queue_id: int) -> str:
    return f"{claude_jobs.prefix()}:batch-submitting:{queue_id}"


def poll_key(batch_id: int) -> str:
    return f"{claude_jobs.prefix()}:batch-poll:{batch_id}"


def _enqueue(delay_seconds: float, func: str, *args: Any, **kwargs: Any) -> None:
    rq_queue = get_rq_queue()
    options = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600, **kwargs}
    if delay_seconds > 0:
        rq_queue.enqueue_in(timedelta(seconds=delay_seconds), func, *args, **options)
    else:
        rq_queue.enqueue(func, *args, **options)


# -- collecting ----------------------------------------------------------------------


def collect(session: Session, queue: Queue, items: Sequence[Item]) -> Counter[str]:
    """Leave the items pending for a batch: schedule the queue's submit job, and make sure
    the batches already holding some of them are being polled. Never routes an item."""
    in_flight = ai_batches.in_flight_items(session, queue.id)
    try:
        for batch_id in sorted({in_flight[i.id] for i in items if i.id in in_flight}):
            schedule_poll(batch_id)
        if any(item.id not in in_flight for item in items):
            schedule_submit(queue.id)
    except RedisError as exc:  # the items stay pending; the sweeper brings them back
        log.warning("queue %s: cannot schedule its Claude batch: %s", queue.slug, exc)
    return Counter({"pending": len(items)})


def schedule_submit(queue_id: int, delay_seconds: float | None = None) -> bool:
    """Schedule the queue's submit job unless one is already waiting. True if scheduled."""
    delay = collect_seconds() if delay_seconds is None else delay_seconds
    if not get_redis().set(submit_key(queue_id), "1", nx=True, ex=int(delay) + 300):
        return False
    settings = claude_jobs.ClaudeSettings.from_app()
    intervals = list(settings.retry_intervals)
    _enqueue(
        delay,
        SUBMIT_JOB,
        queue_id,
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        job_timeout=int(settings.timeout_seconds + 120),
    )
    return True


def schedule_poll(batch_id: int, *, token: str | None = None, delay_seconds: float = 0) -> bool:
    """Make sure one chain of poll jobs follows the batch. Without `token`, starts a chain
    only if none holds the batch (a chain holds it while its next poll is scheduled);
    with the chain's own token, schedules its next poll. True if a job was scheduled."""
    redis = get_redis()
    hold = int(delay_seconds + poll_seconds()) + 300
    if token is None:
        token = secrets.token_hex(8)
        if not redis.set(poll_key(batch_id), token, nx=True, ex=hold):
            return False
    else:
        redis.set(poll_key(batch_id), token, ex=hold)
    _enqueue(delay_seconds, POLL_JOB, batch_id, token, job_timeout=600)
    return True


# -- submitting ----------------------------------------------------------------------


def submit_batch(queue_id: int) -> int | None:
    """Send the queue's waiting items as one batch. Returns the ai_batches id, or None
    when nothing was sent. Raises (so RQ retries) only for transient provider errors with
    attempts left."""
    redis = get_redis()
    redis.delete(submit_key(queue_id))  # items arriving from now on need a new job
    token = secrets.token_hex(8)
    settings = claude_jobs.ClaudeSettings.from_app()
    if not redis.set(
        submitting_key(queue_id), token, nx=True, ex=int(settings.timeout_seconds) + 300
    ):
        schedule_submit(queue_id)  # another job is sending this queue's batch right now
        return None
    try:
        return _submit(queue_id, settings)
    finally:
        if redis.get(submitting_key(queue_id)) == token.encode():
            redis.delete(submitting_key(queue_id))


def custom_id(item_id: int) -> str:
    return f"item-{item_id}"


def _submit(queue_id: int, settings: claude_jobs.ClaudeSettings) -> int | None:
    with get_database().session() as session:
        queue = session.get(Queue, queue_id)
        if queue is None or queue.recommender_kind != "claude" or not queue.ai_batch:
            return None  # switched away from batch mode: the sweeper routes its items
        items = ai_batches.items_to_submit(session, queue, max_items())
        if not items:
            return None
        reason = claude_jobs.unavailable_reason(session, queue, settings)
        if reason is not None:
            recommending.route_without_recommendation(session, queue, items, *reason)
            session.commit()
            return None
        requests = {
            custom_id(item.id): claude.build_request(session, queue, item) for item in items
        }
        reserved = _reserve_or_route(session, queue, items, requests)
        items = [item for item in items if item.id in reserved]
        requests = {custom_id(item.id): requests[custom_id(item.id)] for item in items}
        attempts = {item.id: 2 if item.ai_status == RETRYING else 1 for item in items}
        item_ids = [item.id for item in items]
        session.commit()  # keeps the routing of items over budget; no transaction stays open
    if not item_ids:
        return None
    first = next(iter(requests.values()))
    breaker = claude_jobs.breaker_for(queue_id, settings)
    try:
        client = claude.make_client(settings.api_key, settings.base_url, settings.timeout_seconds)
        provider_batch_id = claude.create_batch(client, requests)
    except claude.ProviderError as exc:
        breaker.record_failure()
        log.warning("queue %d: batch not accepted (%s): %s", queue_id, exc.kind, exc)
        if exc.retryable and not claude_jobs.last_attempt():
            raise
        _route_ids(item_ids, "unavailable", f"{exc.kind}: {exc}")
        return None
    breaker.record_success()
    with get_database().session() as session:
        batch = ai_batches.record_batch(
            session,
            queue_id=queue_id,
            provider_batch_id=provider_batch_id,
            model=first.model,
            prompt_version=first.prompt_version,
            requests={
                custom_id(item_id): claude.batch_entry(
                    requests[custom_id(item_id)], item_id, attempts[item_id], reserved[item_id]
                )
                for item_id in item_ids
            },
        )
        session.commit()
        batch_id = batch.id
    log.info("queue %d: batch %s sent with %d items", queue_id, provider_batch_id, len(requests))
    try:
        schedule_poll(batch_id, delay_seconds=poll_seconds())
    except RedisError as exc:  # the sweeper and collect() start polling again
        log.warning("batch %d: could not schedule its poll: %s", batch_id, exc)
    return batch_id


def _reserve_or_route(
    session: Session, queue: Queue, items: Sequence[Item], requests: dict[str, claude.ClaudeRequest]
) -> dict[int, float | None]:
    """Reserve the most each item's request can cost at the batch price, oldest first, for
    the items that fit in what today's budget has left once spend and the batches in
    progress are counted; send the others to people as budget_exhausted. Returns {item id:
    reserved USD} of the items to send (None: a model without a price cannot be held)."""
    budget = ai_budget.status(session, queue)
    left = budget.remaining_usd
    reserved: dict[int, float | None] = {}
    for n, item in enumerate(items):
        cost = requests[custom_id(item.id)].max_cost_usd(batch=True)
        if left is not None and cost is not None:
            if cost > left:
                held = budget.reserved_usd + sum(c or 0.0 for c in reserved.values())
                error = (
                    f"budget_exhausted: the daily AI budget of ${budget.limit_usd:.2f} cannot"
                    f" hold this item's batch request (up to ${cost:.4f}): ${left:.4f} is left"
                    f" after ${budget.spent_usd:.4f} spent and ${held:.4f} held by Message Batches"
                )
                recommending.route_without_recommendation(
                    session, queue, items[n:], "budget_exhausted", error
                )
                log.info(
                    "queue %d: %d items over the AI budget go to people", queue.id, len(items) - n
                )
                break
            left -= cost
        reserved[item.id] = cost
    return reserved


def _route_ids(item_ids: Sequence[int], ai_status: str, ai_error: str) -> None:
    """Send the items that are still pending to people, keeping the error."""
    with get_database().session() as session:
        for item_id in item_ids:
            item = recommending.lock_pending_item(session, item_id)
            if item is not None:
                recommending.route_failed(session, item.queue, item, ai_status, ai_error)
        session.commit()


# -- polling -------------------------------------------------------------------------


def poll_batch(batch_id: int, token: str) -> str:
    """Check the batch once; attach its results if it has ended, else poll again later.

    Returns "ended", "waiting", "written_off", "done" (it had ended before) or
    "superseded" (another poll chain follows this batch).
    """
    redis = get_redis()
    holder = redis.get(poll_key(batch_id))
    if holder is not None and holder != token.encode():
        return "superseded"
    with get_database().session() as session:
        batch = session.get(AiBatch, batch_id)
        if batch is None or batch.status != ai_batches.IN_PROGRESS:
            redis.delete(poll_key(batch_id))
            return "done"
        provider_batch_id, created_at = batch.provider_batch_id, batch.created_at
    settings = claude_jobs.ClaudeSettings.from_app()
    too_old = utcnow() - created_at > give_up_after()
    try:
        client = claude.make_client(settings.api_key, settings.base_url, settings.timeout_seconds)
        ended = claude.batch_status(client, provider_batch_id) == "ended"
        results = claude.batch_results(client, provider_batch_id) if ended else None
    except claude.ProviderError as exc:
        if exc.retryable and not too_old:
            log.warning("batch %d: cannot read it now (%s); polling again", batch_id, exc)
            schedule_poll(batch_id, token=token, delay_seconds=max(poll_seconds(), 1))
            return "waiting"
        status = _write_off(batch_id, f"batch_lost: {exc.kind}: {exc}")
        redis.delete(poll_key(batch_id))
        return status
    if results is None:
        if too_old:
            status = _write_off(batch_id, "batch_expired: the batch did not end in time")
            redis.delete(poll_key(batch_id))
            return status
        # At least a second between polls, so a burst worker in tests does not spin.
        schedule_poll(batch_id, token=token, delay_seconds=max(poll_seconds(), 1))
        return "waiting"
    status = _attach_results(batch_id, results)
    redis.delete(poll_key(batch_id))
    return status


def _attach_results(batch_id: int, results: dict[str, Any]) -> str:
    with get_database().session() as session:
        batch = ai_batches.lock_open_batch(session, batch_id)
        if batch is None:  # another poll attached them first
            return "done"
        latency_ms = (utcnow() - batch.created_at).total_seconds() * 1000
        tally: Counter[str] = Counter()
        retry_ids = []
        for cid, entry in batch.requests.items():
            outcome = _attach_one(session, batch, entry, results.get(cid), latency_ms)
            tally[outcome] += 1
            if outcome == RETRYING:
                retry_ids.append(int(entry["item_id"]))
        batch.status = ai_batches.ENDED
        batch.ended_at = utcnow()
        failed = {k: v for k, v in tally.items() if k != "succeeded"}
        batch.error = ", ".join(f"{v} {k}" for k, v in sorted(failed.items())) or None
        session.commit()
    log.info("batch %d ended: %s", batch_id, dict(tally))
    # After the commit: the batch no longer holds them, so the next batch may take them.
    if retry_ids and not pipeline.enqueue_recommendations(get_rq_queue(), retry_ids):
        log.warning("batch %d: %d items to retry wait for the sweeper", batch_id, len(retry_ids))
    return "ended"


def _attach_one(
    session: Session, batch: AiBatch, entry: dict[str, Any], result: Any, latency_ms: float
) -> str:
    """Attach one request's result to its item (if still pending). Returns the result type."""
    kind = getattr(result, "type", "missing")
    outcome = None
    request = claude.request_from_entry(entry, batch.model, batch.prompt_version)
    if kind == "succeeded":
        outcome = claude.read_message(request, result.message, latency_ms)
        # Billed whether or not the item still waits for it, and exactly once: this runs
        # in the transaction that marks the batch ended.
        ai_budget.record_call(
            session,
            queue_id=batch.queue_id,
            item_id=entry["item_id"],
            model=batch.model,
            mode="batch",
            outcome="ok" if outcome.answer else outcome.failure_kind or "invalid",
            usage=outcome.usage,
            latency_ms=latency_ms,
        )
    item = recommending.lock_pending_item(session, entry["item_id"])
    if item is None:
        return kind
    if outcome is not None and outcome.answer is not None:
        recommending.record_advice(
            session,
            item.queue,
            item,
            claude.as_recommendation(request, outcome, batch=True),
            evidence=outcome.answer.evidence,
            prompt_redacted=entry["prompt"],
        )
    elif outcome is not None:
        recommending.route_failed(
            session, item.queue, item, "unavailable", f"{outcome.failure_kind}: {outcome.failure}"
        )
    elif kind == "errored":
        return _errored(session, item, entry, result)
    elif kind in ("expired", "canceled"):
        error = f"batch_{kind}: the provider {kind} the request before answering it"
        recommending.route_failed(session, item.queue, item, "unavailable", error)
    else:
        error = "batch_missing: the batch's results did not include this item"
        recommending.route_failed(session, item.queue, item, "unavailable", error)
    return kind


def _errored(session: Session, item: Item, entry: dict[str, Any], result: Any) -> str:
    """Keep the item for one more attempt if its error may pass (returns RETRYING), or
    send it to people (returns "errored")."""
    error = f"batch_errored: {claude.batch_error_text(result)}"
    attempt = int(entry.get("attempt", 1))
    if claude.batch_error_is_transient(result) and attempt < MAX_BATCH_ATTEMPTS:
        item.ai_status = RETRYING
        item.ai_error = f"{error} (attempt {attempt} of {MAX_BATCH_ATTEMPTS})"[:2000]
        log.info("item %d: batch request errored (%s); trying once more", item.id, error)
        return RETRYING
    if attempt > 1:
        error = f"{error} (attempt {attempt} of {MAX_BATCH_ATTEMPTS})"
    recommending.route_failed(session, item.queue, item, "unavailable", error)
    return "errored"


def _write_off(batch_id: int, reason: str) -> str:
    """A batch that will never give results: its items go to people, it ends."""
    with get_database().session() as session:
        batch = ai_batches.lock_open_batch(session, batch_id)
        if batch is None:
            return "done"
        for entry in batch.requests.values():
            item = recommending.lock_pending_item(session, entry["item_id"])
            if item is not None:
                recommending.route_failed(session, item.queue, item, "unavailable", reason)
        batch.status = ai_batches.ENDED
        batch.ended_at = utcnow()
        batch.error = reason[:2000]
        session.commit()
    log.warning("batch %d written off: %s", batch_id, reason)
    return "written_off"
