"""Pipeline benchmark: ingest 10,000 items, let worker processes route them, report items/s.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/test_workers \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/pipeline.py

DATABASE_URL and REDIS_URL default as in review/config.py (a SQLite file in instance/ and
redis://127.0.0.1:6379/0). The benchmark refuses SQLite unless --allow-sqlite: SQLite has a
single writer, so its figure says little about production. The database must be migrated
(`.venv/bin/alembic upgrade head`).

What it does: creates a fresh bench queue (local recommender), seeds human decisions and
trains the local model, sets a policy (default threshold 0.8), ingests the items through the
service layer in batches of 1,000 as the API does (commit, then enqueue), then starts the
worker processes (`flask --app app worker --burst --no-sweeper --simple`) on a queue name of
its own and measures the wall time from starting them until no item of the bench queue is
pending, worker start-up included. The last line is `items_per_s=<n>`.

Workers run with --simple by default: a long-lived process keeps its database connection
(with PostgreSQL's prepared statements), SQLAlchemy's statement cache and the loaded model
across jobs. `--fork` measures RQ's default forking worker, which starts each job cold in a
new child process and is about half as fast per job.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import func, select  # noqa: E402

from app import create_app  # noqa: E402
from models import Item, Queue  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.redis_conn import get_rq_queue  # noqa: E402
from review.services import accounts, ingest, pipeline, queues, reviewing  # noqa: E402
from workers.recommenders.local import train_for_queue  # noqa: E402

LABELS = ("approve", "reject", "escalate")
TELLS = {
    "approve": "resolved thanks working fixed great confirmed solved happy closing".split(),
    "reject": "spam unsubscribe lottery winner crypto prize click bitcoin promo".split(),
    "escalate": "lawyer chargeback breach lawsuit fraud police stolen sue regulator".split(),
}
COMMON = "order account ticket please today support invoice team hello delivery refund".split()


def ticket(rng: random.Random) -> tuple[dict, str]:
    """A support ticket and the label a careful reviewer would give it.

    One in five tickets borrows a word from another label, so the model is not always sure.
    """
    label = rng.choice(LABELS)
    words = rng.sample(TELLS[label], 3) + rng.sample(COMMON, 5)
    if rng.random() < 0.2:
        words.append(rng.choice(TELLS[rng.choice(LABELS)]))
    rng.shuffle(words)
    payload = {
        "subject": " ".join(words[:3]),
        "body": " ".join(words[3:]),
        "customer": {"tier": rng.choice(["free", "pro", "enterprise"]), "lang": "en"},
    }
    return payload, label


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="items per ingest call")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed-decisions", type=int, default=150)
    parser.add_argument("--threshold", type=float, default=0.8, help="policy default threshold")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--fork",
        action="store_true",
        help="run the forking worker (a child process per job) instead of --simple workers",
    )
    parser.add_argument("--allow-sqlite", action="store_true")
    return parser.parse_args()


def setup_queue(app, stamp: str, n_decisions: int, threshold: float, rng: random.Random) -> int:
    """A bench queue with n_decisions human decisions, a trained model and a policy."""
    with app.app_context(), get_database().session() as session:
        user = accounts.create_user(session, f"bench-{stamp}@example.com", "admin", "bench-pass-1")
        queue = queues.create_queue(
            session,
            {
                "slug": f"bench-{stamp}",
                "name": f"Bench {stamp}",
                "labels": list(LABELS),
                "reason_codes": ["wrong_label"],
                "recommender": {"kind": "local"},
            },
            user,
        )
        tickets = [ticket(rng) for _ in range(n_decisions)]
        # Seed items arrive with an outside guess ("approve", 0.5) so they are routed to
        # review at once (policy v1 auto-approves nothing); a person then decides each.
        body = {
            "items": [
                {
                    "external_id": f"seed-{i}",
                    "payload": payload,
                    "recommendation": {
                        "label": "approve",
                        "confidence": 0.5,
                        "model": "bench-seed",
                    },
                }
                for i, (payload, _) in enumerate(tickets)
            ]
        }
        results = ingest.ingest(session, queue, ingest.parse_ingest_body(body, queue)[0])
        for result, (_, label) in zip(results, tickets, strict=True):
            decision = (
                {"action": "approve"}
                if label == "approve"
                else {"action": "override", "label": label, "reason_code": "wrong_label"}
            )
            reviewing.decide(session, result.item.id, user, decision)
        model = train_for_queue(session, queue)
        if model is None:
            raise SystemExit("the seeded decisions did not pass the training gate")
        print(
            f"trained local-v{model.version} on {model.trained_on} decisions: "
            f"accuracy {model.metrics['accuracy']:.3f}, ECE {model.metrics['ece']:.3f}, "
            f"calibration: {model.metrics['calibration']}"
        )
        queues.create_policy_version(
            session, queue, {"default_threshold": threshold, "note": "benchmark policy"}, user
        )
        return queue.id


def ingest_items(app, queue_id: int, n_items: int, batch: int, rng: random.Random) -> float:
    """Ingest n_items in batches as the API does: store, commit, enqueue. Returns seconds."""
    started = time.perf_counter()
    with app.app_context():
        for start in range(0, n_items, batch):
            with get_database().session() as session:
                queue = session.get(Queue, queue_id)
                body = {
                    "items": [
                        {"external_id": f"item-{i}", "payload": ticket(rng)[0]}
                        for i in range(start, min(start + batch, n_items))
                    ]
                }
                results = ingest.ingest(session, queue, ingest.parse_ingest_body(body, queue)[0])
                ids = [r.item.id for r in results if r.created]
            if not pipeline.enqueue_recommendations(get_rq_queue(), ids):
                raise SystemExit("Redis refused the jobs; is REDIS_URL right?")
    return time.perf_counter() - started


def status_counts(app, queue_id: int) -> Counter[str]:
    with app.app_context(), get_database().session() as session:
        rows = session.execute(
            select(Item.status, func.count()).where(Item.queue_id == queue_id).group_by(Item.status)
        )
        return Counter({status: count for status, count in rows})


def start_workers(
    n: int, env: dict[str, str], log_dir: Path, *, simple: bool
) -> list[subprocess.Popen]:
    """n burst workers, each logging to its own file in log_dir."""
    command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst", "--no-sweeper"]
    if simple:
        command.append("--simple")
    workers = []
    for i in range(n):
        with open(log_dir / f"worker-{i}.log", "w") as log:  # the child keeps its own copy
            workers.append(
                subprocess.Popen(
                    command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return workers


def wait_until_routed(
    app, queue_id: int, total: int, timeout: float, workers
) -> tuple[float, float] | None:
    """(seconds until the first item was routed, seconds until none is pending), or None
    on timeout or when every worker exited with items still pending."""
    started = time.perf_counter()
    first_routed: float | None = None
    last_print = 0.0
    while True:
        elapsed = time.perf_counter() - started
        pending = status_counts(app, queue_id)["pending"]
        if first_routed is None and pending < total:
            first_routed = elapsed
        if pending == 0:
            return (first_routed or elapsed), elapsed
        if elapsed - last_print >= 1.0:
            print(f"  {elapsed:6.1f}s  routed {total - pending:>6}/{total}", flush=True)
            last_print = elapsed
        if elapsed > timeout or all(w.poll() is not None for w in workers):
            if status_counts(app, queue_id)["pending"] == 0:
                return (first_routed or elapsed), time.perf_counter() - started
            return None
        time.sleep(0.25)


def main() -> None:
    args = parse_args()
    config = settings_from_env()
    if str(config["DATABASE_URL"]).startswith("sqlite") and not args.allow_sqlite:
        raise SystemExit("refusing to benchmark SQLite (set DATABASE_URL, or pass --allow-sqlite)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    config["RQ_QUEUE_NAME"] = f"bench-{stamp}"  # no other worker may take our jobs
    app = create_app(config)
    rng = random.Random(20261126)
    print(
        f"database {app.extensions['db'].engine.url.render_as_string(hide_password=True)}, "
        f"redis {config['REDIS_URL']}, rq queue {config['RQ_QUEUE_NAME']}"
    )

    queue_id = setup_queue(app, stamp, args.seed_decisions, args.threshold, rng)
    seconds = ingest_items(app, queue_id, args.items, args.batch, rng)
    print(
        f"ingested {args.items} items in {seconds:.2f}s ({args.items / seconds:.0f} items/s), "
        f"{pipeline.ITEMS_PER_JOB} items per job"
    )

    env = dict(
        os.environ,
        DATABASE_URL=str(config["DATABASE_URL"]),
        REDIS_URL=str(config["REDIS_URL"]),
        RQ_QUEUE_NAME=str(config["RQ_QUEUE_NAME"]),
        SECRET_KEY=str(config["SECRET_KEY"]),
    )
    log_dir = Path(tempfile.mkdtemp(prefix="workbench-bench-"))
    mode = "forking" if args.fork else "simple (--simple)"
    print(f"starting {args.workers} {mode} workers (logs in {log_dir})")
    workers = start_workers(args.workers, env, log_dir, simple=not args.fork)
    timing = wait_until_routed(app, queue_id, args.items, args.timeout, workers)
    for worker in workers:
        worker.wait(timeout=60)
    counts = status_counts(app, queue_id)
    with app.app_context():
        failed = get_rq_queue().failed_job_registry.count
    print(
        f"statuses (seed items included): {dict(counts)}; failed jobs: {failed}; "
        f"worker exit codes: {[w.returncode for w in workers]}"
    )
    if timing is None:
        raise SystemExit(f"not every item was routed within {args.timeout:.0f}s")
    first, elapsed = timing
    print(
        f"routed {args.items} items in {elapsed:.2f}s with {args.workers} workers, start-up "
        f"included (first item routed after {first:.1f}s; "
        f"{args.items / max(elapsed - first, 1e-9):.0f} items/s after that)"
    )
    print(f"items_per_s={args.items / elapsed:.0f}")


if __name__ == "__main__":
    main()
