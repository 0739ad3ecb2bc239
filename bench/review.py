"""Reviewer benchmark: 16 simulated reviewers on a queue of 1,000,000 items, on PostgreSQL.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/test_w2_rev \\
        .venv/bin/python bench/review.py

What it does:
1. Migrates the database (alembic upgrade heads) and, unless the bench queue already holds
   them, bulk-loads 1,000,000 items awaiting review with their AI recommendations in a
   few INSERT ... SELECT statements over generate_series (never the ORM row by row), with
   the items' copies of their recommendation's label and confidence. Every run starts
   with VACUUM ANALYZE (see vacuum()).
   Priorities are skewed like real traffic (90% at 0, 9% at 1, 1% at 5), ages
   spread over 30 days. Reruns reuse the rows and top the queue back up.
2. Starts the app under gunicorn on 127.0.0.1 (`gunicorn 'app:create_app()' --workers W
   --threads T --worker-class gthread`), exactly as in production.
3. Runs 16 reviewers, each a thread with its own keep-alive HTTP connection and login
   session. A reviewer opens the review page, then repeatedly submits "approve" with the
   form's idempotency key through the htmx endpoint, which answers with the next item's
   HTML: that round trip is the decision latency. Like review.js, each submit names the
   prefetched item the page puts on screen meanwhile (X-Review-Preview), so the answer
   leaves out that item's card, which the page already has (--no-preview: draw it again,
   as the benchmark did before 2026-11-27's last session). Every 5th decision it loads the queue
   page (cycling default sort, oldest first, least confident first, a label filter and the
   next keyset page): that is the queue latency. The page then fetches its live counts, as
   the browser does on load; that is timed on its own (counts latency). Every 10th
   decision it re-sends the previous submit (a double click), which must be refused.
   Between actions a reviewer "thinks" for --think-ms (default 100 ms; people take
   seconds); --think-ms 0 turns it into a stress test of back-to-back requests.
4. Counts double decisions: items with more than one review or more than one decision in
   the audit log, and items that two responses both reported as saved.

Prints p50/p95/p99 of the three latencies; the last line is
`decision_p95_ms=<n> queue_p95_ms=<n> double_decisions=<n>`.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import machine_speed  # noqa: E402  (bench/, this script's folder)
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from models import Queue, User  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.services import accounts, members, queues  # noqa: E402

SLUG = "bench-review"
LABELS = ["approve", "reject", "escalate", "spam"]
PASSWORD = "bench-password"
ITEM_RE = re.compile(r'data-item-id="(\d+)" data-external-id="([^"]*)"')
PREFETCHED_RE = re.compile(r'<template id="prefetched-item" data-item-id="(\d+)"')
KEY_RE = re.compile(r'name="idempotency_key" value="([0-9a-f]+)"')
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CURSOR_RE = re.compile(r'rel="next" href="([^"]+)"')
COUNTS_RE = re.compile(r'hx-get="([^"]+/counts[^"]*)"')


def migrate(url: str) -> None:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "heads")


def setup_queue_and_users(app, reviewers: int) -> tuple[int, list[str]]:
    """The bench queue and its reviewers (members), created once."""
    with app.app_context(), get_database().session() as session:
        queue = session.scalar(select(Queue).where(Queue.slug == SLUG))
        if queue is None:
            queue = queues.create_queue(
                session,
                {
                    "slug": SLUG,
                    "name": "Bench review",
                    "labels": LABELS,
                    "reason_codes": ["wrong_label", "missing_context"],
                    "recommender": {"kind": "none"},
                },
                None,
            )
            session.flush()
        emails = [f"bench-reviewer-{n}@example.com" for n in range(reviewers)]
        for email in emails:
            user = session.scalar(select(User).where(User.email == email))
            if user is None:
                user = accounts.create_user(session, email, "reviewer", PASSWORD, f"Bench {email}")
                session.flush()
            members.add_member(session, queue, user, None)
        return queue.id, emails


def load_items(app, queue_id: int, target: int) -> None:
    """Top the queue up to `target` items awaiting review, in bulk statements."""
    with app.app_context(), get_database().session() as session:
        waiting = session.scalar(
            text("SELECT count(*) FROM items WHERE queue_id = :q AND status = 'needs_review'"),
            {"q": queue_id},
        )
        missing = target - waiting
        if missing <= 0:
            print(f"queue holds {waiting:,} waiting items; reusing them", flush=True)
            return
        start = session.scalar(text("SELECT coalesce(max(id), 0) FROM items")) + 1
        print(f"loading {missing:,} items ...", flush=True)
        began = time.perf_counter()
        for chunk_start in range(0, missing, 250_000):
            count = min(250_000, missing - chunk_start)
            session.execute(
                text(
                    """
                    INSERT INTO items (queue_id, external_id, payload, payload_sha256, priority,
                        status, ai_status, created_at, updated_at, routed_at)
                    SELECT :q, 'bench-' || (:base + g),
                        json_build_object(
                            'subject', 'Ticket ' || (:base + g),
                            'body', 'Customer writes about order ' || (:base + g) ||
                                '. ' || repeat('The checkout failed and I was charged. ', 3),
                            'channel', (ARRAY['email','chat','phone'])[1 + g % 3],
                            'customer', json_build_object('tier', 'pro', 'id', g % 9973)),
                        md5((:base + g)::text) || md5(g::text),
                        CASE WHEN g % 100 = 0 THEN 5 WHEN g % 10 = 0 THEN 1 ELSE 0 END,
                        'needs_review', 'ok',
                        now() - (g % 43200) * interval '1 minute',
                        now(), now()
                    FROM generate_series(1, :n) AS g
                    """
                ),
                {"q": queue_id, "base": start + chunk_start, "n": count},
            )
            session.execute(
                text(
                    """
                    INSERT INTO recommendations (item_id, source, model, label, confidence,
                        rationale, created_at)
                    SELECT i.id, 'external', 'bench-model',
                        (ARRAY['approve','reject','escalate','spam'])[1 + i.id % 4],
                        ((i.id::bigint * 7919) % 1000) / 1000.0, 'bench rationale', now()
                    FROM items i LEFT JOIN recommendations r ON r.item_id = i.id
                    WHERE i.queue_id = :q AND r.id IS NULL
                    """
                ),
                {"q": queue_id},
            )
            # The copies routing.attach_recommendation keeps on every item.
            session.execute(
                text(
                    """
                    UPDATE items SET ai_label = r.label, ai_confidence = r.confidence
                    FROM recommendations r
                    WHERE r.item_id = items.id AND items.queue_id = :q
                        AND items.ai_label IS NULL
                    """
                ),
                {"q": queue_id},
            )
            session.commit()
            print(f"  {chunk_start + count:,} rows", flush=True)
        print(f"loaded in {time.perf_counter() - began:.0f} s", flush=True)


def vacuum(app) -> None:
    """VACUUM ANALYZE the tables a run writes, as autovacuum would have done by now on a
    production server (the test machines run PostgreSQL with autovacuum off). Without it
    the loader's UPDATE leaves a dead copy of every item, and every claim and count
    wades through them."""
    with app.app_context():
        with get_database().engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("items", "recommendations", "reviews", "item_events", "audit_events"):
                connection.execute(text(f"VACUUM (ANALYZE) {table}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workers: int, threads: int, log) -> subprocess.Popen:  # noqa: ANN001
    """gunicorn serving the app; its request log goes to `log`, a file (a pipe that is read
    slowly stalls every request on its log line)."""
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "bench-secret")
    server = subprocess.Popen(
        [
            str(REPO_ROOT / ".venv/bin/gunicorn"),
            "app:create_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
            # Keep idle connections longer than a reviewer thinks on a loaded machine (the
            # default, 2 s, lets gunicorn close a socket just as the next submit goes out).
            "--keep-alive",
            "30",
            # Import the app once in the master (scikit-learn and anthropic take seconds).
            "--preload",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login")
            if connection.getresponse().status == 200:
                connection.close()
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("gunicorn did not answer within 180 s")


class Browser:
    """One reviewer's keep-alive connection with its session cookie."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, form: dict | None = None, headers=None):
        all_headers = dict(headers or {})
        if self.cookie:
            all_headers["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urlencode(form)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=all_headers)
        response = self.conn.getresponse()
        data = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, data

    def login(self, email: str) -> None:
        _, page = self.request("GET", "/login")
        token = LOGIN_CSRF_RE.search(page).group(1)
        status, _ = self.request(
            "POST", "/login", {"email": email, "password": PASSWORD, "csrf_token": token}
        )
        if status != 302:
            raise SystemExit(f"login failed for {email}: {status}")


QUEUE_VIEWS = ["", "?sort=oldest", "?sort=confidence", "?label=spam", "next"]


def reviewer(port, email, decisions, think, preview, results, lock, ready) -> None:  # noqa: PLR0913
    """One reviewer's session; a broken connection ends it and counts as an error."""
    try:
        _review(port, email, decisions, think, preview, results, lock, ready)
    except (OSError, threading.BrokenBarrierError) as exc:
        with lock:
            results["errors"].append(f"{email}: {exc!r}")


def _review(port, email, decisions, think, preview, results, lock, ready) -> None:  # noqa: PLR0913
    browser = Browser(port)
    try:
        browser.login(email)
    finally:
        # Logging in (a deliberately slow password hash) is not part of what is measured.
        ready.wait()
    status, page = browser.request("GET", f"/queues/{SLUG}/review")
    csrf = CSRF_RE.search(page).group(1)
    headers = {"HX-Request": "true", "HX-Target": "review-item", "X-CSRFToken": csrf}
    previous = None
    next_page = None
    for n in range(decisions):
        match = ITEM_RE.search(page)
        if match is None:
            # The queue holds far more items than the run decides: an empty screen is a bug.
            with lock:
                results["errors"].append(f"{email}: no item after {n} decisions: {page[:2000]}")
            break
        item_id, external_id = int(match.group(1)), match.group(2)
        form = {"action": "approve", "idempotency_key": KEY_RE.search(page).group(1)}
        submit_headers = dict(headers)
        prefetched = PREFETCHED_RE.search(page) if preview else None
        if prefetched:
            submit_headers["X-Review-Preview"] = prefetched.group(1)
        time.sleep(think * random.uniform(0.5, 1.5))
        began = time.perf_counter()
        status, page = browser.request(
            "POST", f"/queues/{SLUG}/items/{item_id}/decision", form, submit_headers
        )
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            results["decision"].append(elapsed)
            if f"Saved {external_id}:" in page:
                results["saved"].append(item_id)
            if "data-from-preview" in page:
                results["short_answers"] += 1
            if status != 200:
                results["errors"].append(status)
        if n % 10 == 9 and previous is not None:
            status, answer = browser.request("POST", previous[0], previous[1], headers)
            with lock:
                results["repeats"] += 1
                if "was not saved: already decided by" not in answer:
                    results["repeat_accepted"] += 1
        previous = (f"/queues/{SLUG}/items/{item_id}/decision", form)
        if n % 5 == 4:
            view = QUEUE_VIEWS[(n // 5) % len(QUEUE_VIEWS)]
            path = next_page if view == "next" and next_page else f"/queues/{SLUG}{view}"
            began = time.perf_counter()
            status, listing = browser.request("GET", path)
            elapsed = (time.perf_counter() - began) * 1000
            cursor = CURSOR_RE.search(listing)
            next_page = cursor.group(1).replace("&amp;", "&") if cursor else None
            counts_path = COUNTS_RE.search(listing).group(1).replace("&amp;", "&")
            began = time.perf_counter()
            counts_status, _ = browser.request("GET", counts_path)
            counts_elapsed = (time.perf_counter() - began) * 1000
            with lock:
                results["queue"].append(elapsed)
                results["counts"].append(counts_elapsed)
                if status != 200:
                    results["errors"].append(status)
                if counts_status != 200:
                    results["errors"].append(counts_status)


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_snapshot(app, server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn processes and of this database's PostgreSQL
    backends, by pid: where the machine's time goes, whatever else runs beside the bench."""
    with app.app_context(), get_database().session() as session:
        backends = session.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).all()
    app_pids = [server_pid, *_children(server_pid)]
    return {
        "app": {pid: _cpu_seconds(pid) for pid in app_pids},
        "postgres": {pid: _cpu_seconds(pid) for pid in backends},
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
    return {
        part: sum(seconds - before[part].get(pid, 0.0) for pid, seconds in after[part].items())
        for part in after
    }


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def double_decisions(app, queue_id: int, saved: list[int]) -> int:
    with app.app_context(), get_database().session() as session:
        by_reviews = session.scalar(
            text(
                "SELECT count(*) FROM (SELECT r.item_id FROM reviews r JOIN items i "
                "ON i.id = r.item_id WHERE i.queue_id = :q GROUP BY r.item_id "
                "HAVING count(*) > 1) d"
            ),
            {"q": queue_id},
        )
        by_audit = session.scalar(
            text(
                "SELECT count(*) FROM (SELECT item_id FROM audit_events WHERE queue_id = :q "
                "AND action IN ('item.approved', 'item.overridden') GROUP BY item_id "
                "HAVING count(*) > 1) d"
            ),
            {"q": queue_id},
        )
    reported_twice = len(saved) - len(set(saved))
    return by_reviews + by_audit + reported_twice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--reviewers", type=int, default=16)
    parser.add_argument("--decisions", type=int, default=150, help="per reviewer")
    parser.add_argument("--think-ms", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--no-preview",
        action="store_true",
        help="submit without X-Review-Preview (the answer draws the next item's card again)",
    )
    args = parser.parse_args()

    settings = settings_from_env()
    if not str(settings["DATABASE_URL"]).startswith("postgresql"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")
    migrate(str(settings["DATABASE_URL"]))
    app = create_app(settings)
    queue_id, emails = setup_queue_and_users(app, args.reviewers)
    load_items(app, queue_id, args.items)
    with app.app_context(), get_database().session() as session:
        # Clear leases left by an interrupted run so every reviewer starts fresh.
        session.execute(
            text(
                "UPDATE items SET leased_by_id = NULL, lease_expires_at = NULL "
                "WHERE queue_id = :q AND leased_by_id IS NOT NULL"
            ),
            {"q": queue_id},
        )
        total = session.scalar(select(func.count()).select_from(text("items")))
    vacuum(app)
    machine_speed.report("before")
    print(f"{total:,} items in the database; starting gunicorn", flush=True)

    port = free_port()
    server_log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for gunicorn's life
        "w", prefix="bench-review-gunicorn-", suffix=".log", delete=False
    )
    print(f"server log: {server_log.name}", flush=True)
    server = start_server(port, args.workers, args.threads, server_log)
    results: dict = {
        "decision": [],
        "queue": [],
        "counts": [],
        "saved": [],
        "errors": [],
        "repeats": 0,
        "repeat_accepted": 0,
        "short_answers": 0,
    }
    lock = threading.Lock()
    ready = threading.Barrier(len(emails) + 1, timeout=300)
    try:
        threads = [
            threading.Thread(
                target=reviewer,
                args=(
                    port,
                    email,
                    args.decisions,
                    args.think_ms / 1000,
                    not args.no_preview,
                    results,
                    lock,
                    ready,
                ),
            )
            for email in emails
        ]
        for thread in threads:
            thread.start()
        ready.wait()  # every reviewer has logged in
        cpu_before = cpu_snapshot(app, server.pid)
        client_before = time.process_time()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        client_cpu = time.process_time() - client_before
        cpu = cpu_used(cpu_before, cpu_snapshot(app, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)

    doubles = double_decisions(app, queue_id, results["saved"]) + results["repeat_accepted"]
    d50, d95, d99 = percentiles(results["decision"])
    q50, q95, q99 = percentiles(results["queue"])
    c50, c95, c99 = percentiles(results["counts"])
    print(
        f"{len(results['decision'])} decisions and {len(results['queue'])} queue pages by "
        f"{args.reviewers} reviewers in {wall:.1f} s (think {args.think_ms:.0f} ms; gunicorn "
        f"{args.workers}x{args.threads}; {results['short_answers']} answers left the card to "
        f"the preview); {results['repeats']} repeated submits refused: "
        f"{results['repeats'] - results['repeat_accepted']}; errors: {len(results['errors'])}"
    )
    for error in [e for e in results["errors"] if isinstance(e, str)][:5]:
        print(f"reviewer stopped: {error}")
    decided = max(1, len(results["decision"]))
    busy = (cpu["app"] + cpu["postgres"] + client_cpu) / (wall * (os.cpu_count() or 1))
    print(
        f"CPU per decision (with its share of queue pages and counts): app "
        f"{cpu['app'] / decided * 1000:.1f} ms, PostgreSQL {cpu['postgres'] / decided * 1000:.1f} "
        f"ms, bench client {client_cpu / decided * 1000:.1f} ms; these three kept "
        f"{busy:.0%} of {os.cpu_count()} cores busy"
    )
    print(f"decision round trip ms: p50={d50:.1f} p95={d95:.1f} p99={d99:.1f}")
    print(f"queue page ms:          p50={q50:.1f} p95={q95:.1f} p99={q99:.1f}")
    print(f"queue counts ms:        p50={c50:.1f} p95={c95:.1f} p99={c99:.1f}")
    machine_speed.report("after")
    print(f"decision_p95_ms={d95:.1f} queue_p95_ms={q95:.1f} double_decisions={doubles}")


if __name__ == "__main__":
    main()
