"""A job's child process shares the worker's memory rather than copying it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from review.redis_conn import get_rq_queue
from workers.worker import create_worker

SMAPS = Path("/proc/self/smaps_rollup")


def _private_dirty_mb() -> float:
    for line in SMAPS.read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no Private_Dirty in smaps_rollup")


def memory_copied_by_a_full_collection() -> float:
    """The job: how much of the shared memory a full collection makes this process copy."""
    before = _private_dirty_mb()
    gc.collect()
    return _private_dirty_mb() - before


@pytest.mark.skipif(not SMAPS.exists(), reason="needs Linux's /proc/self/smaps_rollup")
def test_a_full_collection_in_a_job_copies_little_of_the_workers_memory(app):
    # The test process, with the app and the whole suite loaded, holds more than a hundred
    # megabytes of Python objects; a child walking them would copy most of those pages.
    with app.app_context():
        app.extensions["db"].engine.connect().close()
        job = get_rq_queue().enqueue(memory_copied_by_a_full_collection)
        create_worker(app).work(burst=True)
        job.refresh()
        copied_mb = job.return_value()

    assert copied_mb is not None, "the job did not finish"
    assert copied_mb < 10, f"the child copied {copied_mb:.0f} MB of the worker's memory"
