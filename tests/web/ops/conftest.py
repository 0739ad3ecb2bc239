"""Fixtures for the operations endpoints: a registered RQ worker with a live heartbeat."""

from __future__ import annotations

import pytest
from rq import Worker

from review.redis_conn import get_rq_queue


@pytest.fixture
def live_worker(app):
    """An RQ worker registered on the app's queue, as a running `flask worker` would be."""
    with app.app_context():
        queue = get_rq_queue()
        worker = Worker([queue], connection=queue.connection, name="test-worker")
        worker.register_birth()
        worker.heartbeat()
    yield worker
    worker.register_death()


# The API tests' bearer-token and database fixtures.
from tests.web.api.conftest import as_role, in_db  # noqa: E402,F401
