"""Claude jobs: dispatching a queue's items to per-item calls, and the call job itself.

Flow for an item of a Claude queue:
1. recommend_items (workers/jobs.py) calls `dispatch`: a spent budget, an open circuit or
   a missing API key route the item to people at once; otherwise the item is claimed in
   Redis and a `recommend_with_claude` job is enqueued, with an RQ Retry whose intervals
   grow. The item stays pending meanwhile; the claim stops the sweeper from doubling it.
2. recommend_with_claude builds the prompt, takes a slot of the cross-worker concurrency
   cap, calls, and stores the answer. Transient errors raise, so RQ retries the job later;
   on the last attempt, and for errors no retry can fix, the item goes to people with
   ai_status "unavailable" and the error kept. No database transaction is open during the
   call.
3. If a worker dies mid-call, the claim expires and the sweeper enqueues the item again.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Retry, get_current_job
from sqlalchemy.orm import Session

from models import Item, Queue
from review.db import get_database
from review.redis_conn import get_redis, get_rq_queue
from review.services import ai_budget, recommending
from review.services.circuit import CircuitBreaker
from review.services.concurrency import Semaphore, SlotUnavailable
from workers.recommenders import claude

log = logging.getLogger(__name__)

CLAUDE_JOB = "workers.claude_jobs.recommend_with_claude"


@dataclass(frozen=True)
class ClaudeSettings:
    """Timeouts, retries and caps, from the app config (review/config.py)."""

    api_key: str | None
    base_url: str | None
    timeout_seconds: float
    retry_intervals: tuple[int, ...]
    max_concurrent_calls: int
    slot_wait_seconds: float
    breaker_failures: int
    breaker_cooldown_seconds: float

    @property
    def claim_seconds(self) -> int:
        """How long an item stays claimed by its job: one attempt plus the longest wait."""
        longest_wait = max(self.retry_intervals or (0,))
        return int(self.timeout_seconds + self.slot_wait_seconds + longest_wait + 10)

    @classmethod
    def from_app(cls) -> ClaudeSettings:
        config = current_app.config
        return cls(
            api_key=config.get("ANTHROPIC_API_KEY"),
            base_url=config.get("ANTHROPIC_BASE_URL"),
            timeout_seconds=float(config.get("AI_TIMEOUT_SECONDS", 30)),
            retry_intervals=tuple(config.get("AI_RETRY_INTERVALS", (5, 15, 45, 120))),
            max_concurrent_calls=int(config.get("AI_MAX_CONCURRENT_CALLS", 8)),
            slot_wait_seconds=float(config.get("AI_SLOT_WAIT_SECONDS", 10)),
            breaker_failures=int(config.get("AI_BREAKER_FAILURES", 5)),
            breaker_cooldown_seconds=float(config.get("AI_BREAKER_COOLDOWN_SECONDS", 60)),
        )


def prefix() -> str:
    """Where this app keeps its Claude state in Redis (per RQ queue, so tests can share a db)."""
    return f"{get_rq_queue().name}:claude"


def breaker_for(
    queue_id: int, settings: ClaudeSettings, redis: Redis | None = None
) -> CircuitBreaker:
    return CircuitBreaker(
        redis or get_redis(),
        f"{prefix()}:breaker:{queue_id}",
        settings.breaker_failures,
        settings.breaker_cooldown_seconds,
    )


def semaphore(settings: ClaudeSettings) -> Semaphore:
    hold = settings.timeout_seconds + 30  # outlives any call; frees a dead worker's slot
    return Semaphore(get_redis(), f"{prefix()}:slots", settings.max_concurrent_calls, hold)


def claim_key(item_id: int) -> str:
    return f"{prefix()}:claim:{item_id}"


def unavailable_reason(
    session: Session, queue: Queue, settings: ClaudeSettings
) -> tuple[str, str] | None:
    """Why the queue's items cannot go to Claude now, as (ai_status, ai_error), or None.

    Raises RedisError when the circuit breaker cannot be read."""
    budget = ai_budget.status(session, queue)
    if budget.exhausted:
        return "budget_exhausted", budget.exhausted_error
    if not settings.api_key:
        return "unavailable", "not_configured: ANTHROPIC_API_KEY is not set"
    if breaker_for(queue.id, settings).state() == "open":
        return "unavailable", "circuit_open: the provider kept failing; calls are paused"
    return None


def dispatch(
    session: Session, queue: Queue, items: Sequence[Item]
) -> tuple[Counter[str], list[tuple[int, str]]]:
    """Route items that cannot be sent to Claude now; claim the rest for a call job, or,
    for a queue in batch mode, leave them pending for its next batch.

    Returns the outcome per status and the (item id, claim token) pairs to enqueue once
    the caller has committed. An item already claimed is left to its job.
    """
    # Imported here: claude_batch builds on this module's settings and breaker.
    from workers import claude_batch

    settings = ClaudeSettings.from_app()
    try:
        reason = unavailable_reason(session, queue, settings)
        if reason is not None:
            return recommending.route_without_recommendation(session, queue, items, *reason), []
        if queue.ai_batch:
            return claude_batch.collect(session, queue, items), []
        redis = get_redis()
        claimed = []
        for item in items:
            token = secrets.token_hex(8)
            if redis.set(claim_key(item.id), token, nx=True, ex=settings.claim_seconds):
                claimed.append((item.id, token))
    except RedisError as exc:  # the items stay pending; the sweeper brings them back
        log.warning("queue %s: cannot reach Redis to dispatch Claude calls: %s", queue.slug, exc)
        return Counter({"pending": len(items)}), []
    return Counter({"pending": len(items)}), claimed


def enqueue_calls(claims: Sequence[tuple[int, str]]) -> None:
    """Enqueue one call job per claimed item. If Redis fails, the claims expire and the
    sweeper brings the items back."""
    if not claims:
        return
    settings = ClaudeSettings.from_app()
    rq_queue = get_rq_queue()
    retry = (
        Retry(max=len(settings.retry_intervals), interval=list(settings.retry_intervals))
        if settings.retry_intervals
        else None
    )
    try:
        for item_id, token in claims:
            rq_queue.enqueue(
                CLAUDE_JOB,
                item_id,
                token,
                retry=retry,
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
                job_timeout=int(settings.timeout_seconds + settings.slot_wait_seconds + 60),
            )
    except RedisError as exc:
        log.warning("could not enqueue Claude calls (%s); the sweeper will retry", exc)


def last_attempt() -> bool:
    """Whether the running job has no RQ retry left (or runs outside a job)."""
    job = get_current_job()
    return job is None or not job.retries_left


def _route(item_id: int, ai_status: str, ai_error: str) -> str:
    with get_database().session() as session:
        item = recommending.lock_pending_item(session, item_id)
        if item is None:
            return "skipped"
        status = recommending.route_failed(session, item.queue, item, ai_status, ai_error)
        session.commit()
        log.info("item %d to people: %s", item_id, ai_error)
        return status


def recommend_with_claude(item_id: int, token: str) -> str:
    """Ask Claude about one pending item and route it. Returns the item's status.

    `token` is the claim the job was enqueued with: if another job has claimed the item
    since (this one waited too long, the sweeper dispatched it again), this one steps
    aside, so an item is sent to Claude once. Raises (so RQ retries the job) only with
    attempts left; the last attempt always leaves the item routed, whatever went wrong.
    """
    settings = ClaudeSettings.from_app()
    redis = get_redis()
    holder = redis.get(claim_key(item_id))
    if holder is not None and holder != token.encode():
        log.info("item %d: claimed by another job; skipping", item_id)
        return "superseded"
    redis.set(claim_key(item_id), token, ex=settings.claim_seconds)
    try:
        status = _recommend(item_id, settings)
    except (claude.ProviderError, SlotUnavailable):
        raise  # retried by RQ; the claim stays so the sweeper leaves the item alone
    except Exception as exc:
        if not last_attempt():
            raise
        log.exception("item %d: Claude job failed", item_id)
        status = _route(item_id, "unavailable", f"internal: {type(exc).__name__}: {exc}")
    redis.delete(claim_key(item_id))
    return status


def _recommend(item_id: int, settings: ClaudeSettings) -> str:
    with get_database().session() as session:
        item = session.get(Item, item_id)
        if item is None or item.status != "pending":
            return "skipped"
        queue = item.queue
        budget = ai_budget.status(session, queue)
        if budget.exhausted:
            session.rollback()
            return _route(item_id, "budget_exhausted", budget.exhausted_error)
        request = claude.build_request(session, queue, item)
        queue_id = queue.id
    breaker = breaker_for(queue_id, settings)
    permit = breaker.permit()
    if not permit.allowed:
        return _route(item_id, "unavailable", f"circuit_open: {permit.reason}")
    try:
        client = claude.make_client(settings.api_key, settings.base_url, settings.timeout_seconds)
        with semaphore(settings).slot(settings.slot_wait_seconds):
            outcome = claude.call(client, request)
    except SlotUnavailable as exc:
        if permit.probe:
            redis_probe_release(breaker)
        if not last_attempt():
            raise
        return _route(item_id, "unavailable", f"concurrency: {exc}")
    except claude.ProviderError as exc:
        if exc.kind != "not_configured":
            breaker.record_failure(probe=permit.probe)
        log.warning(
            "item %d: Claude call failed (%s, retryable=%s): %s",
            item_id,
            exc.kind,
            exc.retryable,
            exc,
        )
        if exc.retryable and not last_attempt():
            raise
        return _route(item_id, "unavailable", f"{exc.kind}: {exc}")
    breaker.record_success()
    return _store(item_id, queue_id, request, outcome)


def redis_probe_release(breaker: CircuitBreaker) -> None:
    """A probe that never called must not keep the circuit half-open for a full cooldown."""
    breaker.redis.delete(breaker.probe_key)


def _store(
    item_id: int, queue_id: int, request: claude.ClaudeRequest, outcome: claude.ClaudeOutcome
) -> str:
    with get_database().session() as session:
        ai_budget.record_call(
            session,
            queue_id=queue_id,
            item_id=item_id,
            model=request.model,
            mode="interactive",
            outcome="ok" if outcome.answer else outcome.failure_kind or "invalid",
            usage=outcome.usage,
            latency_ms=outcome.latency_ms,
        )
        item = recommending.lock_pending_item(session, item_id)
        if item is None:  # routed meanwhile (a duplicate job); the call is still billed
            session.commit()
            return "skipped"
        queue = item.queue
        if outcome.answer is None:
            status = recommending.route_failed(
                session, queue, item, "unavailable", f"{outcome.failure_kind}: {outcome.failure}"
            )
        else:
            status = recommending.record_advice(
                session,
                queue,
                item,
                claude.as_recommendation(request, outcome),
                evidence=outcome.answer.evidence,
                prompt_redacted=request.audit_text(),
            )
        session.commit()
        return status
