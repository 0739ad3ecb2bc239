"""What one /metrics scrape costs: the collector's queries against an existing database.

    createdb -h 127.0.0.1 bench_metrics
    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/bench_metrics \\
        .venv/bin/python bench/metrics.py --load 1000000 --scrapes 5

With --load N (PostgreSQL) it first migrates the database and tops it up to N items in a
few INSERT ... SELECT statements: four queues, items in every status (60% auto-approved,
20% waiting for a reviewer, 15% decided, 5% pending), each routed one with a recommendation
and a latency, and an AI call ledger row for every tenth. Then it runs the scrape's parts
(items by queue and status, decisions, the AI latency histogram, AI calls, the webhook
outbox, Redis) and whole scrapes, read-only. The last line is
`items=<n> scrape_p50_ms=<n> scrape_max_ms=<n> bytes=<n>`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from models import Item, Queue  # noqa: E402
from models.base import utcnow  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.redis_conn import get_rq_queue  # noqa: E402
from review.services import metrics, queues  # noqa: E402


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


LOAD_ITEMS = """
INSERT INTO items (queue_id, external_id, payload, payload_sha256, priority, status,
    final_label, ai_status, created_at, updated_at, routed_at)
SELECT q.id, 'bench-' || g, json_build_object('text', 'ticket ' || g), md5(g::text), 0,
    CASE WHEN g % 20 = 0 THEN 'pending' WHEN g % 5 = 1 THEN 'needs_review'
         WHEN g % 20 IN (2, 3, 7) THEN 'decided' ELSE 'auto_approved' END,
    NULL, 'ok', now() - (g % 43200) * interval '1 minute', now(), now()
FROM generate_series(:first, :last) AS g
JOIN queues q ON q.slug = 'bench-metrics-' || (g % 4)
"""
LOAD_RECOMMENDATIONS = """
INSERT INTO recommendations (item_id, source, model, label, confidence, rationale,
    latency_ms, created_at)
SELECT i.id, CASE WHEN i.id % 3 = 0 THEN 'claude' ELSE 'local' END, 'bench', 'approve',
    (i.id % 1000) / 1000.0, '', CASE WHEN i.id % 3 = 0 THEN 400 + i.id % 3000 ELSE i.id % 40 END,
    now()
FROM items i WHERE i.id >= :first_id AND i.status <> 'pending'
"""
LOAD_AI_CALLS = """
INSERT INTO ai_calls (queue_id, item_id, provider, model, mode, outcome, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, latency_ms, created_at)
SELECT i.queue_id, i.id, 'anthropic', 'claude-haiku-4-5', 'interactive', 'ok', 900, 60, 0, 0,
    0.0012, 800, now()
FROM items i WHERE i.id >= :first_id AND i.id % 10 = 0
"""


def load(app, target: int) -> None:
    """Migrate, then top the database up to `target` items (PostgreSQL only)."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", app.config["DATABASE_URL"])
    command.upgrade(config, "head")
    with app.app_context(), get_database().session() as session:
        for n in range(4):
            slug = f"bench-metrics-{n}"
            if session.scalar(select(Queue.id).where(Queue.slug == slug)) is None:
                definition = {
                    "slug": slug,
                    "name": slug,
                    "labels": ["approve", "reject"],
                    "reason_codes": ["other"],
                }
                queues.create_queue(session, definition, None)
        session.flush()
        have = session.scalar(select(func.count()).select_from(Item)) or 0
        if have >= target:
            print(f"{have:,} items already; reusing them", flush=True)
            return
        first_id = (session.scalar(select(func.max(Item.id))) or 0) + 1
        began = time.perf_counter()
        for start in range(have + 1, target + 1, 250_000):
            last = min(start + 249_999, target)
            session.execute(text(LOAD_ITEMS), {"first": start, "last": last})
        session.execute(text(LOAD_RECOMMENDATIONS), {"first_id": first_id})
        session.execute(text(LOAD_AI_CALLS), {"first_id": first_id})
        print(f"loaded {target - have:,} items in {_ms(began) / 1000:.0f} s", flush=True)
    with app.app_context(), get_database().engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, help="top up to this many items first")
    args = parser.parse_args()
    app = create_app({**settings_from_env(), "LOG_FORMAT": "off"})
    if args.load:
        load(app, args.load)
    with app.app_context():
        factory = get_database().session_factory
        rq_queue = get_rq_queue()
        with factory() as session:
            items = session.scalar(select(func.count()).select_from(Item)) or 0
            slugs = dict(session.execute(select(Queue.id, Queue.slug)).all())
            now = utcnow()
            parts = {
                "items by queue and status": lambda: list(
                    metrics._item_metrics(session, slugs, now)
                ),
                "decisions": lambda: list(metrics._decision_metrics(session, slugs)),
                "AI latency: first fold": lambda: metrics.fold_new_latencies(
                    session, rq_queue.connection, now
                ),
                "AI latency: histogram": lambda: metrics._latency_histogram(
                    session, rq_queue.connection, slugs
                ),
                "AI calls, tokens, cost": lambda: list(metrics._ai_call_metrics(session, slugs)),
                "webhook outbox": lambda: list(metrics._webhook_metrics(session, now)),
                "Redis: jobs and workers": lambda: list(metrics._rq_metrics(rq_queue, now)),
            }
            # Start the running totals afresh, so the first fold reads every recommendation.
            rq_queue.connection.delete(metrics.LATENCY_KEY)
            for name, part in parts.items():
                started = time.perf_counter()
                part()
                print(f"{name:28s} {_ms(started):8.1f} ms")
        timings, size = [], 0
        for _ in range(args.scrapes):
            registry = CollectorRegistry(auto_describe=False)
            registry.register(metrics.WorkbenchCollector(factory, rq_queue))
            started = time.perf_counter()
            size = len(generate_latest(registry))
            timings.append(_ms(started))
        print(f"{args.scrapes} whole scrapes: " + ", ".join(f"{t:.0f}" for t in timings) + " ms")
        print(
            f"items={items} scrape_p50_ms={statistics.median(timings):.0f} "
            f"scrape_max_ms={max(timings):.0f} bytes={size}"
        )


if __name__ == "__main__":
    main()
