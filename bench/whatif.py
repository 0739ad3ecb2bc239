"""What-if benchmark: server time per slider move with 1,000,000 labeled items in a queue.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/test_w2_policy \\
    .venv/bin/python bench/whatif.py

The database must be migrated (`.venv/bin/alembic upgrade heads`). PostgreSQL only, unless
--allow-sqlite. What it does:

1. creates a fresh bench queue with four labels and a policy (thresholds 0.9, audit 5%),
   and fills it in bulk with SQL (`generate_series`): N items, each with a recommendation,
   a routing record (inclusion probability 1 below the threshold, 0.05 for audited ones)
   and a human decision. The AI is right with probability = its confidence.
2. runs VACUUM ANALYZE on the tables it loaded (see vacuum()), then builds the evidence
   once (cold: one pass over the labeled rows) and prints that time;
3. moves a slider: `--moves` htmx requests of the what-if page for one label at random
   thresholds, through Flask's test client as a logged-in policy owner (session load,
   role and membership checks, policy and watermark queries, estimate, fragment
   rendering: everything but the network), and the same through the JSON API with a
   bearer token.

Each move is timed on the server side of the WSGI call, in wall-clock and in this
process's CPU time (the figure to trust on a busy machine). The last line is
`whatif_p95_ms=<n>`: the 95th percentile of the page's slider moves (wall-clock).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.services import accounts, members, policy_stats, queues  # noqa: E402

LABELS = ["refund", "bug_report", "account_access", "spam"]
PASSWORD = "bench-password-1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="labeled items")
    parser.add_argument("--moves", type=int, default=300, help="slider moves to time")
    parser.add_argument("--allow-sqlite", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="time the newest bench queue again, without seeding"
    )
    return parser.parse_args()


def seed(app, n: int) -> tuple[str, str, str]:
    """The bench queue filled with n labeled items; returns (slug, owner email, API token)."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    slug = f"bench-whatif-{stamp}"
    database = get_database()
    with database.session() as session:
        owner = accounts.create_user(
            session, f"owner-{stamp}@bench.local", "policy_owner", PASSWORD
        )
        reviewer = accounts.create_user(session, f"rev-{stamp}@bench.local", "reviewer", PASSWORD)
        queue = queues.create_queue(
            session,
            {
                "slug": slug,
                "name": "What-if bench",
                "labels": LABELS,
                "reason_codes": ["wrong_label"],
                "recommender": {"kind": "none"},
            },
            owner,
        )
        members.add_member(session, queue, owner, None)
        policy = queues.create_policy_version(
            session,
            queue,
            {"default_threshold": 0.9, "audit_rate": 0.05, "note": "bench"},
            owner,
        )
        _, token = accounts.create_token(session, owner, name="bench")
        ids = {"q": queue.id, "policy": policy.id, "reviewer": reviewer.id}
        email = owner.email
    started = time.perf_counter()
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMP TABLE bench_rows ON COMMIT DROP AS "
                "SELECT g AS n, random() AS c, random() AS u, "
                "(array['refund','bug_report','account_access','spam'])"
                "[1 + floor(random() * 4)::int] AS label "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": n},
        )
        conn.execute(
            text(
                "INSERT INTO items (queue_id, external_id, payload, payload_sha256, priority,"
                " status, final_label, created_at, updated_at, routed_at, decided_at) "
                "SELECT :q, 'b-' || n, '{}', '', 0, 'decided', label, now(), now(), now(), now() "
                "FROM bench_rows"
            ),
            ids,
        )
        conn.execute(
            text(
                "CREATE TEMP TABLE bench_ids ON COMMIT DROP AS SELECT i.id, r.* FROM items i "
                "JOIN bench_rows r ON i.external_id = 'b-' || r.n WHERE i.queue_id = :q"
            ),
            ids,
        )
        conn.execute(
            text(
                "INSERT INTO recommendations (item_id, source, model, label, confidence, rationale,"
                " created_at) SELECT id, 'external', 'bench', label, c, '', now() FROM bench_ids"
            )
        )
        # Below 0.9 every item was reviewed (p = 1); above, only a 5% audit (p = 0.05),
        # so the rows above the threshold stand for twenty times as many items each.
        conn.execute(
            text(
                "INSERT INTO routing_records (item_id, policy_version_id, route, threshold,"
                " confidence, reason, inclusion_probability, audit, created_at) "
                "SELECT id, :policy, 'review', 0.9, c, 'bench', "
                "CASE WHEN c < 0.9 THEN 1 ELSE 0.05 END, c >= 0.9, now() FROM bench_ids"
            ),
            ids,
        )
        conn.execute(
            text(
                "INSERT INTO reviews (item_id, reviewer_id, action, ai_label, final_label, comment,"
                " decided_at) SELECT id, :reviewer, CASE WHEN u < c THEN 'approved' ELSE "
                "'overridden' END, label, CASE WHEN u < c THEN label ELSE 'spam_' || label END,"
                " '', now() FROM bench_ids"
            ),
            ids,
        )
    print(f"seeded {n:,} labeled items in {time.perf_counter() - started:.1f}s")
    return slug, email, token


# The tables seed() loads, and so the tables the evidence build reads.
LOADED_TABLES = ("items", "recommendations", "routing_records", "reviews")


def vacuum() -> None:
    """VACUUM ANALYZE the loaded tables, as autovacuum would have done by now on a production
    server (the test machines run PostgreSQL with autovacuum off). Without it the planner
    has no statistics for a million fresh rows and the visibility map is empty, so the cold
    build cannot use index-only scans; VACUUM cannot run inside a transaction, hence
    AUTOCOMMIT."""
    if get_database().engine.dialect.name != "postgresql":
        return
    with get_database().engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in LOADED_TABLES:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))


def reuse(app) -> tuple[str, str, str]:
    """The newest bench queue, with a fresh policy owner (member) and token to time it with."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    with get_database().session() as session:
        slug = session.scalar(
            text(
                "SELECT q.slug FROM queues q WHERE q.slug LIKE 'bench-whatif-%' AND EXISTS "
                "(SELECT 1 FROM items i WHERE i.queue_id = q.id) ORDER BY q.id DESC LIMIT 1"
            )
        )
        if slug is None:
            sys.exit("no seeded bench queue to reuse; run without --reuse first")
        owner = accounts.create_user(
            session, f"owner-{stamp}@bench.local", "policy_owner", PASSWORD
        )
        members.add_member(session, queues.get_queue(session, slug), owner, None)
        _, token = accounts.create_token(session, owner, name="bench")
        return slug, owner.email, token


def timed_get(client, url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(wall-clock ms, CPU ms of this process) of one request through the WSGI app."""
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    cpu = (time.process_time() - cpu_started) * 1000
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return elapsed, cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    args = parse_args()
    config = settings_from_env()
    if str(config["DATABASE_URL"]).startswith("sqlite") and not args.allow_sqlite:
        sys.exit("refusing SQLite: set DATABASE_URL to PostgreSQL (or pass --allow-sqlite)")
    config["WTF_CSRF_ENABLED"] = True
    app = create_app(config)
    with app.app_context():
        slug, email, token = reuse(app) if args.reuse else seed(app, args.items)
        started = time.perf_counter()
        vacuum()
        print(f"VACUUM ANALYZE {', '.join(LOADED_TABLES)}: {time.perf_counter() - started:.1f}s")
        session = get_database().session_factory()
        queue = queues.get_queue(session, slug)
        started = time.perf_counter()
        evidence = policy_stats.queue_evidence(session, queue)
        print(
            f"cold evidence build: {(time.perf_counter() - started):.2f}s "
            f"({evidence.n_labeled:,} labeled items)"
        )
        session.close()

    client = app.test_client()
    login_page = client.get("/login").text
    csrf = login_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    page = client.get(f"/policy/queues/{slug}/")
    assert page.status_code == 200, page.status_code
    rng = random.Random(1)
    htmx = {"HX-Request": "true", "HX-Target": "figures-0"}
    page_moves, api_moves = [], []
    for _ in range(args.moves):
        t = f"{rng.uniform(0.5, 1.0):.3f}"
        query = "&".join(f"t_{label}={t if i == 0 else '0.9'}" for i, label in enumerate(LABELS))
        page_moves.append(timed_get(client, f"/policy/queues/{slug}/?{query}", htmx))
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(args.moves):
        t = f"{rng.uniform(0.5, 1.0):.3f}"
        api_moves.append(
            timed_get(client, f"/api/v1/queues/{slug}/whatif?label=refund&threshold={t}", bearer)
        )
    for name, timings in (("page fragment", page_moves), ("API", api_moves)):
        for kind, values in (("wall", [w for w, _ in timings]), ("cpu", [c for _, c in timings])):
            print(
                f"{name} ({kind}): median {statistics.median(values):.1f} ms, "
                f"p95 {percentile(values, 0.95):.1f} ms, max {max(values):.1f} ms"
            )
    print(f"whatif_p95_ms={percentile([w for w, _ in page_moves], 0.95):.1f}")


if __name__ == "__main__":
    main()
