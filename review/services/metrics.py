"""Prometheus metrics, gathered when /metrics is scraped.

Every figure is read from the database or Redis at scrape time (a custom collector)
instead of being counted in process memory. The web app runs several processes and the
workers fork a child per job, so in-memory counters would each see a fraction of the work
and vanish with the child; the database already holds every item, decision and AI call,
so reading it gives the same answer whichever process is scraped. The queries are
aggregates over indexed columns (items by queue and status, AI calls by queue), one each;
the AI latency histogram, which would read every recommendation ever made, is instead
folded forward into running totals in Redis (see fold_new_latencies). bench/metrics.py
measures a scrape: about 0.4 s at a million items on a loaded 2-core machine, most of it
counting items by queue and status.

Counters derived from rows (`*_total`) only grow while rows are only added, which is how
the workbench keeps decisions and AI calls; Prometheus' rate() works on them as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import cast

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue as RqQueue
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from models import AiCall, Item, Queue, Recommendation, Review
from models.base import utcnow
from models.webhook import WebhookEvent
from review.services import background_jobs

WAITING_STATUSES = ("pending", "needs_review")
# Upper bounds (seconds) of the AI latency histogram: local models answer in milliseconds,
# Claude in about a second, retried calls in tens of seconds.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WEBHOOK_BACKLOG_STATUSES = ("pending", "sending")


class WorkbenchCollector(Collector):
    """Collects the workbench's metrics from one database and one RQ queue per scrape."""

    def __init__(self, session_factory: sessionmaker[Session], rq_queue: RqQueue) -> None:
        self.session_factory = session_factory
        self.rq_queue = rq_queue

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with self.session_factory() as session:
            slugs = dict(session.execute(select(Queue.id, Queue.slug)).all())
            yield from _item_metrics(session, slugs, now)
            yield from _decision_metrics(session, slugs)
            yield from _ai_call_metrics(session, slugs)
            yield from _webhook_metrics(session, now)
            try:
                fold_new_latencies(session, self.rq_queue.connection, now)
                latency = _latency_histogram(session, self.rq_queue.connection, slugs)
            except (RedisError, OSError):
                latency = None  # workbench_redis_up says why it is missing
        if latency is not None:
            yield latency
        yield from _rq_metrics(self.rq_queue, now)


def _item_metrics(session: Session, slugs: dict[int, str], now: datetime) -> Iterator[Metric]:
    items = GaugeMetricFamily(
        "workbench_items", "Items by review queue and status.", labels=["queue", "status"]
    )
    counts: dict[tuple[int, str], int] = {}
    for queue_id, status, count in session.execute(
        select(Item.queue_id, Item.status, func.count()).group_by(Item.queue_id, Item.status)
    ):
        counts[(queue_id, status)] = count
        items.add_metric([slugs.get(queue_id, str(queue_id)), status], count)
    yield items

    oldest = GaugeMetricFamily(
        "workbench_oldest_waiting_seconds",
        "Age of the oldest item waiting for a recommendation (pending) or a person "
        "(needs_review), by review queue.",
        labels=["queue", "status"],
    )
    for queue_id, status, created in session.execute(
        select(Item.queue_id, Item.status, func.min(Item.created_at))
        .where(Item.status.in_(WAITING_STATUSES))
        .group_by(Item.queue_id, Item.status)
    ):
        age = max(0.0, (now - created).total_seconds())
        oldest.add_metric([slugs.get(queue_id, str(queue_id)), status], age)
    yield oldest

    automation = GaugeMetricFamily(
        "workbench_automation_ratio",
        "Share of routed items the policy auto-approved, since the queue began "
        "(auto_approved / (auto_approved + needs_review + decided)).",
        labels=["queue"],
    )
    for queue_id, slug in slugs.items():
        auto = counts.get((queue_id, "auto_approved"), 0)
        routed = (
            auto + counts.get((queue_id, "needs_review"), 0) + counts.get((queue_id, "decided"), 0)
        )
        if routed:
            automation.add_metric([slug], auto / routed)
    yield automation


def _decision_metrics(session: Session, slugs: dict[int, str]) -> Iterator[Metric]:
    decisions = CounterMetricFamily(
        "workbench_decisions",
        "Final decisions by review queue and kind: auto_approved by the policy, approved "
        "or overridden by a person.",
        labels=["queue", "kind"],
    )
    for queue_id, count in session.execute(
        select(Item.queue_id, func.count())
        .where(Item.status == "auto_approved")
        .group_by(Item.queue_id)
    ):
        decisions.add_metric([slugs.get(queue_id, str(queue_id)), "auto_approved"], count)
    for queue_id, action, count in session.execute(
        select(Item.queue_id, Review.action, func.count())
        .join(Item, Item.id == Review.item_id)
        .group_by(Item.queue_id, Review.action)
    ):
        decisions.add_metric([slugs.get(queue_id, str(queue_id)), action], count)
    yield decisions


# The AI latency histogram is kept as running totals in Redis, folded forward from the
# recommendations table at each scrape: rows are only ever added, so each is counted once,
# and a scrape reads only the rows since the last one instead of every recommendation
# ever made (1.2 s at a million). A row is folded once it is SETTLE old, so a transaction
# still open when its id was passed is not skipped (unless it stays open longer than that).
LATENCY_KEY = "workbench:metrics:ai_latency"
LATENCY_LOCK = "workbench:metrics:ai_latency:lock"
WATERMARK = "last_recommendation_id"
SETTLE = timedelta(seconds=60)


def fold_new_latencies(session: Session, redis: Redis, now: datetime) -> None:
    """Add the recommendations made since the last fold to the totals in Redis.

    One process folds at a time (a Redis lock); the others read the totals as they are.
    If Redis loses the totals, the next fold starts again from the first recommendation.
    """
    lock = redis.lock(LATENCY_LOCK, timeout=60, blocking_timeout=0)
    if not lock.acquire():
        return
    try:
        last = int(redis.hget(LATENCY_KEY, WATERMARK) or 0)
        upper = session.scalar(
            select(func.max(Recommendation.id)).where(
                Recommendation.id > last, Recommendation.created_at < now - SETTLE
            )
        )
        if upper is None:
            return
        bucket_columns = [
            func.sum(case((Recommendation.latency_ms <= bound * 1000, 1), else_=0))
            for bound in LATENCY_BUCKETS
        ]
        rows = session.execute(
            select(
                Item.queue_id,
                Recommendation.source,
                func.count(),
                func.sum(Recommendation.latency_ms),
                *bucket_columns,
            )
            .join(Item, Item.id == Recommendation.item_id)
            .where(
                Recommendation.id > last,
                Recommendation.id <= upper,
                Recommendation.latency_ms.is_not(None),
            )
            .group_by(Item.queue_id, Recommendation.source)
        )
        with redis.pipeline(transaction=True) as pipe:
            for queue_id, source, count, total_ms, *in_buckets in rows:
                key = f"{queue_id}|{source}"
                pipe.hincrby(LATENCY_KEY, f"{key}|count", count)
                pipe.hincrbyfloat(LATENCY_KEY, f"{key}|sum", float(total_ms or 0) / 1000)
                for bound, n in zip(LATENCY_BUCKETS, in_buckets, strict=True):
                    pipe.hincrby(LATENCY_KEY, f"{key}|{bound}", int(n or 0))
            pipe.hset(LATENCY_KEY, WATERMARK, upper)
            pipe.execute()
    finally:
        lock.release()


def _latency_histogram(session: Session, redis: Redis, slugs: dict[int, str]) -> Metric:
    """How long recommenders took per item, by queue and source (local, claude)."""
    histogram = HistogramMetricFamily(
        "workbench_ai_latency_seconds",
        "Time a recommender took to answer for one item, by review queue and source "
        f"(items recommended at least {SETTLE.seconds} s ago).",
        labels=["queue", "source"],
    )
    totals: dict[tuple[str, str], dict[str, str]] = {}
    # The app's Redis clients leave responses as bytes (decode_responses is off).
    stored = cast("dict[bytes, bytes]", redis.hgetall(LATENCY_KEY))
    for field, value in stored.items():
        parts = field.decode().split("|")
        if len(parts) == 3:
            totals.setdefault((parts[0], parts[1]), {})[parts[2]] = value.decode()
    for (queue_id, source), values in sorted(totals.items()):
        buckets = [(str(bound), int(values.get(str(bound), 0))) for bound in LATENCY_BUCKETS]
        buckets.append(("+Inf", int(values.get("count", 0))))
        slug = slugs.get(int(queue_id), queue_id)
        histogram.add_metric([slug, source], buckets, sum_value=float(values.get("sum", 0)))
    return histogram


def _ai_call_metrics(session: Session, slugs: dict[int, str]) -> Iterator[Metric]:
    """Calls to paid providers, their tokens and their cost, from the billing ledger."""
    calls = CounterMetricFamily(
        "workbench_ai_calls",
        "Billed AI provider calls by review queue, model and outcome.",
        labels=["queue", "model", "outcome"],
    )
    tokens = CounterMetricFamily(
        "workbench_ai_tokens",
        "Tokens billed by AI providers, by review queue, model and kind.",
        labels=["queue", "model", "kind"],
    )
    cost = CounterMetricFamily(
        "workbench_ai_cost_usd",
        "What AI provider calls cost, in US dollars, by review queue and model.",
        labels=["queue", "model"],
    )
    per_model: dict[tuple[str, str], list[float]] = {}
    for queue_id, model, outcome, n, inp, out, cread, cwrite, usd in session.execute(
        select(
            AiCall.queue_id,
            AiCall.model,
            AiCall.outcome,
            func.count(),
            func.sum(AiCall.input_tokens),
            func.sum(AiCall.output_tokens),
            func.sum(AiCall.cache_read_tokens),
            func.sum(AiCall.cache_write_tokens),
            func.sum(AiCall.cost_usd),
        ).group_by(AiCall.queue_id, AiCall.model, AiCall.outcome)
    ):
        key = (slugs.get(queue_id, str(queue_id)), model)
        calls.add_metric([*key, outcome], n)
        sums = per_model.setdefault(key, [0, 0, 0, 0, 0.0])
        for i, value in enumerate((inp, out, cread, cwrite, usd)):
            sums[i] += value or 0
    for key, (in_total, out_total, read_total, write_total, usd_total) in per_model.items():
        for kind, total in (
            ("input", in_total),
            ("output", out_total),
            ("cache_read", read_total),
            ("cache_write", write_total),
        ):
            tokens.add_metric([*key, kind], total)
        cost.add_metric(list(key), usd_total)
    yield calls
    yield tokens
    yield cost


def _webhook_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    events = GaugeMetricFamily(
        "workbench_webhook_events",
        "Decision webhook events in the outbox by status (pending and sending are the "
        "backlog; dead ones wait for an admin's replay).",
        labels=["status"],
    )
    for status, count in session.execute(
        select(WebhookEvent.status, func.count())
        .where(WebhookEvent.status.in_((*WEBHOOK_BACKLOG_STATUSES, "dead")))
        .group_by(WebhookEvent.status)
    ):
        events.add_metric([status], count)
    yield events
    oldest = session.scalar(
        select(func.min(WebhookEvent.created_at)).where(
            WebhookEvent.status.in_(WEBHOOK_BACKLOG_STATUSES)
        )
    )
    yield GaugeMetricFamily(
        "workbench_webhook_oldest_pending_seconds",
        "Age of the oldest decision webhook event not yet delivered (0 when none waits).",
        value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )


def _rq_metrics(rq_queue: RqQueue, now: datetime) -> Iterator[Metric]:
    """The job queue (Redis): backlog, failures and workers. Redis down is a metric too."""
    up = GaugeMetricFamily("workbench_redis_up", "1 if Redis answered this scrape.")
    try:
        backlog = background_jobs.backlog(rq_queue, now)
        workers = background_jobs.workers(rq_queue, now)
    except (RedisError, OSError):
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    jobs = GaugeMetricFamily(
        "workbench_jobs", "Background jobs by state.", labels=["rq_queue", "state"]
    )
    for state in ("queued", "started", "scheduled", "deferred", "failed"):
        jobs.add_metric([rq_queue.name, state], getattr(backlog, state))
    yield jobs
    oldest = GaugeMetricFamily(
        "workbench_oldest_queued_job_seconds",
        "How long the oldest queued background job has waited (0 when none waits).",
        labels=["rq_queue"],
    )
    oldest.add_metric([rq_queue.name], backlog.oldest_queued_seconds or 0.0)
    yield oldest
    alive = GaugeMetricFamily(
        "workbench_workers", "Background workers by heartbeat.", labels=["heartbeat"]
    )
    alive.add_metric(["alive"], sum(w.alive for w in workers))
    alive.add_metric(["stale"], sum(not w.alive for w in workers))
    yield alive
    failures = GaugeMetricFamily(
        "workbench_worker_failed_jobs",
        "Jobs each running worker has seen fail since it started (restarts reset it; the "
        'failed job registry is in workbench_jobs{state="failed"}).',
        labels=["worker"],
    )
    for worker in workers:
        failures.add_metric([worker.name], worker.failed_jobs)
    yield failures


def waiting_items(session: Session, now: datetime) -> list[tuple[str, str, int, float]]:
    """(queue slug, status, items, age of the oldest in seconds) for items still waiting,
    for the admin operations page."""
    rows = session.execute(
        select(Queue.slug, Item.status, func.count(), func.min(Item.created_at))
        .join(Queue, Queue.id == Item.queue_id)
        .where(Item.status.in_(WAITING_STATUSES))
        .group_by(Queue.slug, Item.status)
        .order_by(Queue.slug, Item.status)
    )
    return [
        (slug, status, count, max(0.0, (now - oldest).total_seconds()))
        for slug, status, count, oldest in rows
    ]


def dead_webhook_events(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "dead")
        )
        or 0
    )
