"""The RQ worker for the app's queue.

Every job runs inside the app's context, so jobs reach the database and Redis through
review.db and review.redis_conn. The forking worker runs each job in a child process; the
child must not touch the parent's pooled database connections (two processes talking on
one socket corrupt both), so it starts from a fresh pool.
"""

from __future__ import annotations

import gc

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.worker import BaseWorker

# Imported here, in the parent, so a forked child finds the jobs (and scikit-learn) loaded
# instead of importing them afresh for every job: that took seconds per job.
import workers.jobs  # noqa: F401, E402
from workers.sweeper import SWEEP_LOCK


# A BaseWorker subclass so super() is typed; the workers' MRO stays the same.
class _AppContextMixin(BaseWorker):
    """Runs each job inside `self.app.app_context()`."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue, execution)


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in the worker process itself: no fork, so tests and debuggers see them."""


class AppWorker(_AppContextMixin, Worker):
    """Forks a child per job, as RQ does by default, so a crashing job cannot kill the worker."""

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        # Not while the sweeper thread is mid-sweep: the child would inherit the locks it
        # holds (SQLite's mutexes among them) and hang on its first connect.
        with SWEEP_LOCK:
            super().fork_work_horse(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # close=False: drop the inherited pool without closing sockets the parent still uses.
        self.app.extensions["db"].engine.dispose(close=False)
        super().main_work_horse(job, queue)


def _freeze_loaded_objects() -> None:
    """Put the objects the worker has loaded (the app, the jobs, scikit-learn) out of the
    cyclic collector's reach, so that each job's forked child shares them instead of
    copying them.

    A forked child shares the parent's pages until it writes to them, and a full collection
    writes to every object it walks (its reference count scratch field). Measured on the
    worker with the app and the jobs loaded: the first full collection in a child copied
    95 MB of the parent's pages and took a quarter of a second; with the objects frozen, it
    copies nothing and takes a millisecond. Done once, when the worker is made: frozen
    objects are never collected (they are still freed when nothing refers to them), so
    what the worker makes later, one job after another, is left to the collector, lest a
    cycle among it outlive its job for good. What is garbage already is collected first."""
    gc.collect()
    gc.freeze()


def create_worker(app: Flask, *, simple: bool = False) -> Worker | SimpleWorker:
    """A worker on the app's RQ queue; `simple` runs jobs in-process (SimpleWorker)."""
    # The web app's connection times out reads after a few seconds so requests fail fast
    # when Redis is down; a worker blocks on BLPOP for minutes, so it needs its own
    # connection without a read timeout (with one, every idle wait ends in a timeout error).
    connection = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=5, health_check_interval=30
    )
    queue = Queue(app.config["RQ_QUEUE_NAME"], connection=connection)
    worker_class = AppSimpleWorker if simple else AppWorker
    worker = worker_class([queue], connection=connection)
    worker.app = app
    if not simple:  # only a forking worker has children to share its memory with
        _freeze_loaded_objects()
    return worker
