"""Audit log benchmark: writer throughput with concurrent writers, sealing and verifying.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/bench_audit \\
    .venv/bin/python bench/audit.py --events 200000 --writers 16

The database must be migrated (`.venv/bin/alembic upgrade heads`); the bench deletes every
audit event first, so never point it at real data. What it does:

1. `--writers` threads each insert `--events / --writers` events through `audit.record`,
   committing every `--per-commit` events (a routing batch is 500), while one sealer thread
   seals in a loop, as a worker's sweeper would: prints events/s written;
2. seals whatever is left and prints events/s sealed (single sealer, batches of 1000);
3. verifies the whole chain as `flask audit verify` does and prints events/s verified.

On PostgreSQL the table is VACUUM ANALYZEd before steps 2 and 3, as autovacuum would have done
by then on a production server (the test machines run with autovacuum off): resetting the
chain and sealing it rewrite every row, and the dead copies would otherwise be scanned too.

The last line is `audit_verify_events_per_s=<n>`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import delete, text  # noqa: E402

from app import create_app  # noqa: E402
from models import AuditChainHead, AuditEvent  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.services import audit, audit_chain  # noqa: E402
from workers.audit_jobs import seal_pending  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--per-commit", type=int, default=20)
    return parser.parse_args()


def write(database, count: int, per_commit: int, writer: int) -> None:
    with database.session_factory() as session:
        for n in range(count):
            audit.record(
                session,
                "bench.event",
                actor=f"user:reviewer{writer}@bench.local",
                n=n,
                label="refund",
                confidence=0.93,
                comment="customer asked twice",
            )
            if (n + 1) % per_commit == 0:
                session.commit()
        session.commit()


def vacuum(database) -> None:  # noqa: ANN001
    """VACUUM ANALYZE the audit table on PostgreSQL (see the module docstring)."""
    if database.engine.dialect.name != "postgresql":
        return
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("VACUUM (ANALYZE) audit_events"))


def main() -> None:
    args = parse_args()
    app = create_app(settings_from_env())
    with app.app_context():
        database = get_database()
        with database.session() as session:
            session.execute(delete(AuditEvent))
            session.execute(delete(AuditChainHead))
        per_writer = args.events // args.writers
        done = threading.Event()

        def sealer() -> None:
            while not done.is_set():
                seal_pending(database)
                time.sleep(0.2)

        seal_thread = threading.Thread(target=sealer)
        seal_thread.start()
        threads = [
            threading.Thread(target=write, args=(database, per_writer, args.per_commit, w))
            for w in range(args.writers)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        written = time.perf_counter() - start
        done.set()
        seal_thread.join()
        total = per_writer * args.writers
        print(f"{database.engine.dialect.name}: {args.writers} writers, {total} events")
        print(f"written with a sealer running: {total / written:,.0f} events/s")

        with database.session() as session:
            session.execute(
                AuditEvent.__table__.update().values(seq=None, prev_hash=None, hash=None)
            )
            session.execute(delete(AuditChainHead))
        vacuum(database)
        start = time.perf_counter()
        seal_pending(database, max_batches=10**9)
        sealed = time.perf_counter() - start
        print(f"sealed from scratch: {total / sealed:,.0f} events/s")
        vacuum(database)

        start = time.perf_counter()
        report = audit_chain.verify_snapshot(database, grace_seconds=10**9)
        verified = time.perf_counter() - start
        assert report.ok, report.problem
        print(f"verified {report.checked} events: {report.checked / verified:,.0f} events/s")
        print(f"audit_verify_events_per_s={report.checked / verified:.0f}")


if __name__ == "__main__":
    main()
