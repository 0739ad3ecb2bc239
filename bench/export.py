"""Export benchmark: snapshot 1,000,000 decided items to JSONL and to Parquet.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/test_w2_export \\
    .venv/bin/python bench/export.py

What it does: migrates the database to the latest schema, creates a fresh bench queue and
bulk-loads `--rows` decided items into it with PostgreSQL COPY (items, recommendations,
routing records, reviews; one in four overridden). Then, for each format, it creates a
snapshot of every human decision and runs the build job (workers/dataset_jobs.py) in a
child process, as a worker would, measuring the wall time of the build and the child's
peak resident memory (its own VmHWM: the memory after its imports is printed too) and CPU
seconds (the client's share; the rest of the wall time is PostgreSQL's, or other load on
the machine). Prints one line per format, then, last, `rows_per_s=<n> peak_rss_mb=<n>`:
the slower format's rows per second and the larger peak. `--queue SLUG` exports a bench
queue loaded by an earlier run instead of loading another.

Loading is not timed. The files go to a temporary folder that is deleted at the end; the
loaded rows stay (the test suite rebuilds the schema of its database anyway).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import machine_speed  # noqa: E402  (bench/, this script's folder)
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import DatasetSnapshot  # noqa: E402
from models.base import utcnow  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.services import accounts, datasets, queues  # noqa: E402

LABELS = ("refund", "bug_report", "account_access", "spam")
WORDS = (
    "order checkout charge twice refund broken login password reset spam winner "
    "invoice account locked error page slow crash billing card expired"
).split()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,parquet")
    parser.add_argument(
        "--queue", help="export this already loaded bench queue (its slug) instead of loading"
    )
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)  # child: build one snapshot
    parser.add_argument("--export-dir", help=argparse.SUPPRESS)
    return parser.parse_args()


def bench_app(export_dir: str):  # type: ignore[no-untyped-def]
    from app import create_app  # the parent only: it loads the worker's heavy imports

    config = settings_from_env()
    config["EXPORT_DIR"] = export_dir
    # No worker runs here: the job is called directly, so Redis is never contacted.
    return create_app(config)


def migrate(url: str) -> None:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "heads")


def _reserve_ids(conn, table: str, count: int) -> int:  # type: ignore[no-untyped-def]
    """Move the table's id sequence past `count` new ids; returns the first of them."""
    first = conn.execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar_one()
    conn.execute(
        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :last)"),
        {"last": first + count - 1},
    )
    return int(first)


def load_rows(app, rows: int) -> str:  # type: ignore[no-untyped-def]
    """Create a bench queue with `rows` decided items, bulk-loaded with COPY. Its slug."""
    database = get_database()
    slug = f"bench-export-{int(time.time())}"
    with database.session() as session:
        queue = queues.create_queue(
            session,
            {
                "slug": slug,
                "name": "Export benchmark",
                "labels": list(LABELS),
                "reason_codes": ["wrong_label", "missing_context"],
                "recommender": {"kind": "none"},
            },
            None,
        )
        reviewer = accounts.create_user(session, f"{slug}@bench.local", "reviewer", "bench-pass")
        session.flush()
        queue_id, reviewer_id = queue.id, reviewer.id
        policy_id = queues.current_policy(session, queue).id
    started = time.perf_counter()
    with database.engine.begin() as conn:
        item0 = _reserve_ids(conn, "items", rows)
        rec0 = _reserve_ids(conn, "recommendations", rows)
        route0 = _reserve_ids(conn, "routing_records", rows)
        review0 = _reserve_ids(conn, "reviews", rows)
        cursor = conn.connection.driver_connection.cursor()
        _copy_all(cursor, rows, queue_id, reviewer_id, policy_id, item0, rec0, route0, review0)
    print(f"loaded {rows} decided items in {time.perf_counter() - started:.1f}s", flush=True)
    vacuum(database)
    print(f"bench queue {slug} (rerun with --queue {slug})", flush=True)
    return slug


def vacuum(database) -> None:  # type: ignore[no-untyped-def]
    """VACUUM ANALYZE the loaded tables, as autovacuum would after a bulk load (it is off on
    the test machines): fresh statistics, and hint bits and the visibility map set now,
    not by the first export, which would otherwise write every page it reads."""
    started = time.perf_counter()
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE items, recommendations, routing_records, reviews"))
    print(f"vacuumed in {time.perf_counter() - started:.1f}s", flush=True)


def _copy(cursor, sql: str, lines) -> None:  # type: ignore[no-untyped-def]
    """COPY text-format lines (tab-separated, \\N for null) in chunks of 10,000."""
    with cursor.copy(sql) as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == 10_000:
                copy.write("".join(chunk))
                chunk.clear()
        copy.write("".join(chunk))


def _at(start: datetime, seconds: int) -> str:
    return (start + timedelta(seconds=seconds)).isoformat()


def _copy_all(cursor, rows, queue_id, reviewer_id, policy_id, item0, rec0, route0, review0):  # type: ignore[no-untyped-def]  # noqa: E501
    """Generated tickets: realistic payloads, one in four decisions an override."""
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def items():  # type: ignore[no-untyped-def]
        for n in range(rows):
            payload = {
                "subject": " ".join(rng.sample(WORDS, 3)),
                "body": " ".join(rng.choices(WORDS, k=20)),
                "customer": {"tier": rng.choice(["free", "pro"]), "channel": "email"},
            }
            text_payload = json.dumps(payload)
            digest = hashlib.sha256(text_payload.encode()).hexdigest()
            at, decided = _at(start, 2 * n), _at(start, 2 * n + 30)
            yield (
                f"{item0 + n}\t{queue_id}\tT-{n}\t{text_payload}\t{digest}\t0\tdecided\t"
                f"{LABELS[n % 4]}\tok\t{at}\t{at}\t{at}\t{decided}\n"
            )

    _copy(
        cursor,
        "COPY items (id, queue_id, external_id, payload, payload_sha256, priority, "
        "status, final_label, ai_status, created_at, updated_at, routed_at, decided_at) "
        "FROM STDIN",
        items(),
    )
    _copy(
        cursor,
        "COPY recommendations (id, item_id, source, model, model_version, label, "
        "confidence, rationale, created_at) FROM STDIN",
        (
            f"{rec0 + n}\t{item0 + n}\texternal\tbench-model\t3\t"
            f"{LABELS[(n + (n % 4 == 0)) % 4]}\t{0.5 + (n % 50) / 100}\t\t"
            f"{_at(start, 2 * n)}\n"
            for n in range(rows)
        ),
    )
    _copy(
        cursor,
        "COPY routing_records (id, item_id, policy_version_id, route, threshold, "
        "confidence, reason, created_at) FROM STDIN",
        (
            f"{route0 + n}\t{item0 + n}\t{policy_id}\treview\t1.0\t{0.5 + (n % 50) / 100}"
            f"\tbelow threshold\t{_at(start, 2 * n)}\n"
            for n in range(rows)
        ),
    )
    _copy(
        cursor,
        "COPY reviews (id, item_id, reviewer_id, action, ai_label, final_label, "
        "reason_code, comment, seconds_on_item, decided_at) FROM STDIN",
        (
            f"{review0 + n}\t{item0 + n}\t{reviewer_id}\t"
            + ("overridden" if n % 4 == 0 else "approved")
            + f"\t{LABELS[(n + (n % 4 == 0)) % 4]}\t{LABELS[n % 4]}\t"
            + ("wrong_label" if n % 4 == 0 else "\\N")
            + f"\t\t12.5\t{_at(start, 2 * n + 30)}\n"
            for n in range(rows)
        ),
    )


def create_snapshot(slug: str, fmt: str) -> int:
    database = get_database()
    with database.session() as session:
        queue = queues.get_queue(session, slug)
        email = f"{fmt}-{uuid.uuid4().hex[:8]}-{slug}@bench.local"  # --queue runs again
        user = accounts.create_user(session, email, "ml", "bench-pass")
        session.flush()
        request = datasets.parse_request(session, queue, user, {"format": fmt}, utcnow())
        return datasets.create_snapshot(session, queue, user, request, utcnow()).id


def build_in_child(snapshot_id: int, export_dir: str) -> tuple[float, float, float, float]:
    """Build in a fresh process; (seconds, that process's peak RSS in MB, its CPU seconds,
    of which in the kernel: page faults on fresh memory, writes).

    The peak is the child's own VmHWM, which it prints last. Not ru_maxrss: Linux carries
    a process's maxrss across fork and exec, so a child of this (large) parent would report
    the parent's size. The CPU seconds tell the client's share of the work apart from the
    database's and from other load on the machine, which the wall time mixes in."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--build", str(snapshot_id), "--export-dir", export_dir],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(child.stdout, end="", flush=True)
    last = child.stdout.strip().splitlines()[-1]
    peak_mb = float(last.removeprefix("peak_rss_mb="))
    kernel = after.ru_stime - before.ru_stime
    cpu = (after.ru_utime - before.ru_utime) + kernel
    return seconds, peak_mb, cpu, kernel


def high_water_mb() -> float:
    """This process's peak resident memory since it started (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child_build(snapshot_id: int, export_dir: str) -> None:
    """The build job's work, in a process that loads only what an export needs.

    The web app and the RQ worker import scikit-learn and the Anthropic SDK at start-up
    (about 300 MB before any job runs); that baseline is the worker's, not the export's.
    Prints its memory after the imports, and last `peak_rss_mb=<n>`.
    """
    from review.db import Database
    from workers.dataset_jobs import run_build

    print(f"  build process after imports, before any row: {high_water_mb():.0f} MB", flush=True)
    config = settings_from_env()
    settings = datasets.ExportSettings(Path(export_dir), 0, str(config["SECRET_KEY"]))
    database = Database(str(config["DATABASE_URL"]))
    started = datetime.now(UTC)
    status = run_build(database, settings, snapshot_id)
    if status != "succeeded":
        raise SystemExit(f"snapshot {snapshot_id} ended {status}")
    print(
        f"  PostgreSQL CPU for the build: {server_cpu_seconds(database, started):.1f}s", flush=True
    )
    print(f"peak_rss_mb={high_water_mb():.0f}", flush=True)


def server_cpu_seconds(database, since: datetime) -> float:  # type: ignore[no-untyped-def]
    """CPU seconds of this database's server processes started since `since`: the build's
    connections, still open in the pool (the server runs on this machine). Parallel query
    workers, gone by now, are not counted; the export asks for none."""
    with database.engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_start >= :since"
            ),
            {"since": since},
        ).scalars()
        ticks = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = parse_args()
    if args.build is not None:
        child_build(args.build, args.export_dir)
        return
    url = settings_from_env()["DATABASE_URL"]
    if not str(url).startswith("postgresql"):
        raise SystemExit("bench/export.py needs PostgreSQL: set DATABASE_URL")
    migrate(str(url))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as export_dir:
        app = bench_app(export_dir)
        with app.app_context():
            slug = args.queue or load_rows(app, args.rows)
            machine_speed.report("before")
            results = []
            for fmt in args.formats.split(","):
                snapshot_id = create_snapshot(slug, fmt)
                seconds, peak_mb, cpu, kernel = build_in_child(snapshot_id, export_dir)
                with get_database().session() as session:
                    built = session.get_one(DatasetSnapshot, snapshot_id)
                    rows, size = built.row_count, sum(f["bytes"] for f in built.files)
                rate = rows / seconds
                results.append((rate, peak_mb))
                print(
                    f"{fmt}: {rows} rows in {seconds:.1f}s = {rate:,.0f} rows/s, "
                    f"{size / 1e6:.0f} MB on disk, peak RSS {peak_mb:.0f} MB, "
                    f"build process CPU {cpu:.1f}s ({kernel:.1f}s in the kernel)",
                    flush=True,
                )
    os.sync()
    machine_speed.report("after")
    print(
        f"rows_per_s={min(r for r, _ in results):.0f} peak_rss_mb={max(m for _, m in results):.0f}"
    )


if __name__ == "__main__":
    main()
