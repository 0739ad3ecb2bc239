"""Statements built once per process: every thread gets the same object."""

from __future__ import annotations

import functools
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from models.base import utcnow
from review.db import make_engine
from review.services import reviewing
from review.services.statements import built_once
from tests.web.ui_helpers import add_items, reviewer_in


def first_builds_in_threads(decorate, threads: int = 16) -> set[int]:
    """Ids of what each thread got from a slow builder called by all at once."""

    @decorate
    def slow_statement(flag: bool) -> object:
        time.sleep(0.01)  # another thread asks meanwhile, as on a fresh gunicorn worker
        return object()

    start = threading.Barrier(threads)
    got: list[int] = []

    def ask() -> None:
        start.wait()
        got.append(id(slow_statement(True)))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return set(got)


def test_threads_asking_at_once_for_a_new_statement_all_get_the_same_one():
    assert len(first_builds_in_threads(built_once)) == 1


def test_functools_cache_alone_would_hand_out_several():
    # What the lock is for: without it, threads that miss together each build their own.
    assert len(first_builds_in_threads(functools.cache)) > 1


def test_different_arguments_get_different_statements():
    @built_once
    def statement(flag: bool) -> object:
        return object()

    assert statement(True) is statement(True)
    assert statement(True) is not statement(False)


def test_the_claim_statement_new_to_a_process_serves_threads_starting_together(app, factory):
    """A fresh worker's first reviews arrive together. Each try below is a fresh process's
    view of the claim: a new engine (nothing compiled yet) and a newly built statement,
    used by eight threads at once. Without the compile when built, some such tries failed
    with NoSuchColumnError (this test failed in about half of its runs)."""
    if app.extensions["db"].is_sqlite:
        pytest.skip("the claim is one statement with a CTE on PostgreSQL only")
    queue = factory.queue("support")
    add_items(app, "support", 10)
    reviewer = reviewer_in(factory, queue)
    failures: list[BaseException] = []
    for _ in range(20):
        engine = make_engine(app.config["DATABASE_URL"])
        claim = built_once(reviewing._claim_statement.__wrapped__)(True)
        start = threading.Barrier(8)

        def claim_in_a_thread(engine=engine, claim=claim, start=start) -> None:
            session = sessionmaker(engine)()
            try:
                now = utcnow()
                session.connection()
                start.wait()
                session.scalar(
                    claim,
                    {
                        "b_queue": queue.id,
                        "b_user": reviewer.id,
                        "b_now": now,
                        "b_priority": 0,
                        "b_started": now,
                        "b_expires": now + timedelta(seconds=60),
                    },
                )
            except BaseException as error:  # noqa: BLE001  collected for the assertion
                failures.append(error)
            finally:
                session.rollback()
                session.close()

        threads = [threading.Thread(target=claim_in_a_thread) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine.dispose()
    assert failures == []
