"""RQ jobs for dataset snapshots. Thin: they take a snapshot id, open sessions, call the
dataset services, commit.

`build_snapshot` is idempotent: a snapshot that is already built (or being built by a
live worker, or expired) is left alone, and a failed one is rebuilt from the same
watermark, so it comes out with the same rows and the same hash.
"""

from __future__ import annotations

import logging
import time

from flask import current_app

from models import DatasetSnapshot
from models.base import utcnow
from review.db import Database, get_database
from review.services import datasets

log = logging.getLogger(__name__)

# Progress is written at most this often: each write is a small transaction of its own.
PROGRESS_INTERVAL_SECONDS = 0.5


def build_snapshot(snapshot_id: int) -> str:
    """The RQ job: build the snapshot's files; returns its status afterwards."""
    settings = datasets.ExportSettings.from_config(current_app.config)
    return run_build(get_database(), settings, snapshot_id)


def run_build(database: Database, settings: datasets.ExportSettings, snapshot_id: int) -> str:
    """Build one snapshot with this database and settings (no Flask app needed)."""
    with database.session() as session:
        if not datasets.claim_for_build(session, snapshot_id, utcnow()):
            snapshot = session.get(DatasetSnapshot, snapshot_id)
            status = snapshot.status if snapshot is not None else "missing"
            log.info("snapshot %d is %s; nothing to do", snapshot_id, status)
            return status
    last_write = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last_write
        if done and done < total and time.monotonic() - last_write < PROGRESS_INTERVAL_SECONDS:
            return
        last_write = time.monotonic()
        with database.session() as progress_session:
            datasets.record_progress(progress_session, snapshot_id, done, total)

    try:
        with database.session() as read_session:
            datasets.begin_consistent_read(read_session)
            snapshot = read_session.get_one(DatasetSnapshot, snapshot_id)
            result = datasets.write_snapshot(read_session, snapshot, settings, progress)
        with database.session() as session:
            snapshot = session.get_one(DatasetSnapshot, snapshot_id)
            datasets.finish_snapshot(session, snapshot, result, settings, utcnow())
            datasets.expire_snapshots(session, settings, utcnow())
    except Exception as exc:
        log.exception("snapshot %d failed", snapshot_id)
        with database.session() as session:
            datasets.fail_snapshot(session, snapshot_id, f"{type(exc).__name__}: {exc}", utcnow())
        raise
    log.info("snapshot %d built: %d rows, sha256 %s", snapshot_id, result.rows, result.sha256)
    return "succeeded"
