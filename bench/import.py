"""Import benchmark: validate and import a generated CSV, report speed and peak memory.

    DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/bench \\
    .venv/bin/python bench/import.py --rows 1000000

Generates a CSV of --rows support tickets (every tenth row broken in one of the ways the
report names: no id, confidence out of range, unknown label), then runs the two passes of
services.imports exactly as the CLI and the background job do (commit after each batch of
1,000): validation, then the import of the valid rows. Each row brings an external
recommendation, so items are routed inside the import and no worker is needed.

Prints, per pass, rows_per_s and the process's peak RSS so far; the last line is
`rows_per_s=<n> peak_rss_mb=<n>`. Run it with --rows 100000 and --rows 1000000 in turn: the
peak memory should stay about the same, because both passes stream the file and keep
nothing per row (repeated ids are checked in a scratch SQLite file on disk).

The database must be migrated (`.venv/bin/alembic upgrade heads`); --allow-sqlite runs on
SQLite anyway, whose single writer makes the speed figure meaningless for production.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from app import create_app  # noqa: E402
from models import DataImport  # noqa: E402
from review.config import settings_from_env  # noqa: E402
from review.db import get_database  # noqa: E402
from review.services import imports, queues  # noqa: E402

LABELS = ["refund", "bug_report", "account_access", "spam"]
WORDS = (
    "order account ticket please today support invoice team hello delivery refund broken".split()
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_file(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["ticket_id", "subject", "body", "channel", "ai_label", "confidence", "model"]
        )
        for n in range(rows):
            ticket_id, label, confidence = f"TCK-{n:08d}", rng.choice(LABELS), rng.random()
            if n % 10 == 3:
                ticket_id = ""
            elif n % 10 == 6:
                confidence = 1.5
            elif n % 10 == 9:
                label = "refnd"
            words = rng.sample(WORDS, 8)
            writer.writerow(
                [
                    ticket_id,
                    " ".join(words[:3]),
                    " ".join(words[3:]) * 3,
                    rng.choice(["email", "chat"]),
                    label,
                    f"{confidence:.3f}",
                    "legacy-rules",
                ]
            )


def run_pass(session, batches, label: str, rows: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in batches:
        session.commit()
    session.commit()
    elapsed = time.perf_counter() - started
    rate = rows / elapsed
    print(
        f"{label}: {rows} rows in {elapsed:.1f}s, rows_per_s={rate:.0f}, "
        f"peak_rss_mb={peak_rss_mb():.0f}",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--allow-sqlite", action="store_true")
    args = parser.parse_args()
    app = create_app(settings_from_env())
    if app.config["DATABASE_URL"].startswith("sqlite") and not args.allow_sqlite:
        sys.exit("refusing SQLite (pass --allow-sqlite to run anyway); set DATABASE_URL")
    with tempfile.TemporaryDirectory() as scratch, app.app_context():
        path = Path(scratch) / "tickets.csv"
        write_file(path, args.rows)
        print(
            f"generated {args.rows} rows, {path.stat().st_size / 1e6:.0f} MB; "
            f"peak_rss_mb={peak_rss_mb():.0f}",
            flush=True,
        )
        session = get_database().session_factory()
        slug = f"bench-import-{uuid.uuid4().hex[:8]}"
        queue = queues.create_queue(
            session,
            {
                "slug": slug,
                "name": "Import benchmark",
                "labels": LABELS,
                "reason_codes": ["wrong_label"],
                "recommender": {"kind": "none"},
            },
            None,
        )
        data_import = imports.create_import(
            session, queue, None, path=path, original_filename="tickets.csv", source="cli"
        )
        imports.begin_validation(
            session, data_import, data_import.mapping, Path(scratch) / "errors.csv", None
        )
        session.commit()
        import_id = data_import.id
        run_pass(session, imports.validate_batches(session, import_id), "validate", args.rows)
        result = session.get(DataImport, import_id)
        print(f"report: {result.valid_rows} valid, {result.error_rows} bad rows", flush=True)
        imports.confirm_import(session, result, None)
        session.commit()
        rate = run_pass(session, imports.import_batches(session, import_id), "import", args.rows)
        result = session.get(DataImport, import_id)
        print(f"created {result.created_count} items, skipped {result.skipped_count}")
        session.close()
    print(f"rows_per_s={rate:.0f} peak_rss_mb={peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
