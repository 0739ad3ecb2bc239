"""RQ jobs for dataset snapshots. Thin: they take a snapshot id, open sessions, call the
dataset services, commit.

`build_snapshot` is idempotent: a snapshot that is already built (or being built by a
live worker, or expired) is left alone, and a failed one is rebuilt from the same
watermark, so it comes out with the same rows and the same hash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

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
        # The first and the last report always go out; a total of 0 is not known yet.
        in_between = done and (done < total or not total)
        if in_between and time.monotonic() - last_write < PROGRESS_INTERVAL_SECONDS:
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


# The stages retrain_snapshot reports, in order (the page's progress bar counts them).
RETRAIN_STEPS = 4


def retrain_snapshot(snapshot_id: int, requested_at: str) -> dict[str, Any]:
    """The RQ job behind "Retrain from this snapshot": train, compare with the model in
    force, keep the new model as an inactive candidate and the report on the snapshot.

    Idempotent: a report made after `requested_at` (this request's, from an earlier run of
    the job) is kept as it is. Progress goes to the job's meta for the page to poll."""
    # Imported here: scikit-learn is heavy, and building a snapshot never needs it.
    from rq import get_current_job

    from workers.dataset_eval import retrain_on_snapshot, store_candidate

    job = get_current_job()
    done = 0

    def step(name: str) -> None:
        nonlocal done
        done += 1
        if job is not None:
            job.meta.update(step=name, done=done, steps=RETRAIN_STEPS)
            job.save_meta()  # type: ignore[no-untyped-call]  # rq 3.0 leaves it unannotated

    settings = datasets.ExportSettings.from_config(current_app.config)
    with get_database().session() as session:
        snapshot = session.get_one(DatasetSnapshot, snapshot_id)
        report = snapshot.evaluation or {}
        if report.get("candidate") and report.get("evaluated_at", "") >= requested_at:
            return {"snapshot_id": snapshot_id, "candidate": report["candidate"]}
        retrained = retrain_on_snapshot(session, snapshot, settings, step)
        step("keeping the retrained model as a candidate")
        candidate = store_candidate(session, snapshot, retrained)
        result = {"snapshot_id": snapshot_id, "candidate": retrained.report["candidate"]}
    log.info("snapshot %d: retrained candidate model id %d", snapshot_id, candidate.id)
    return result
