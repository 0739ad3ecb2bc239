"""`flask --app app worker`: an RQ worker on the app's queue, plus the pending-item sweeper."""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import configure_mappers

from workers.logs import configure_worker_logging
from workers.sweeper import run_sweeper
from workers.worker import create_worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process (SimpleWorker, no fork).")
@click.option("--no-sweeper", is_flag=True, help="Do not re-enqueue items left pending.")
@with_appcontext
def worker_command(burst: bool, simple: bool, no_sweeper: bool) -> None:
    """Run an RQ worker that recommends and routes pending items."""
    configure_worker_logging()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Configure the ORM mappers now, before the sweeper thread starts: mapper configuration
    # takes a process-wide lock, and a child forked while the sweeper held it would wait on
    # it forever (a thread's lock is inherited locked, without the thread to release it).
    configure_mappers()
    stop = threading.Event()
    if not no_sweeper:
        threading.Thread(target=run_sweeper, args=(app, stop), name="sweeper", daemon=True).start()
    try:
        # The scheduler runs RQ retries that wait (Claude calls back off between attempts).
        create_worker(app, simple=simple).work(
            burst=burst, logging_level="INFO", with_scheduler=True
        )
    finally:
        stop.set()
