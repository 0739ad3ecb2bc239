"""Structured logs: request ids on requests and responses, job ids in jobs, JSON lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from review.redis_conn import get_rq_queue
from review.services import pipeline
from review.structured_logging import JsonFormatter, LogContextFilter
from tests.workers.helpers import add_items, ticket
from workers.worker import create_worker


@pytest.fixture
def json_lines():
    """What the app's JSON handler writes, captured from the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_a_request_id_is_made_echoed_and_logged(client, json_lines):
    response = client.get("/login")
    request_id = response.headers["X-Request-Id"]
    assert len(request_id) == 32
    access = [e for e in json_lines() if e["logger"] == "review.access"]
    assert access[-1]["request_id"] == request_id
    assert access[-1]["path"] == "/login" and access[-1]["status"] == 200
    assert access[-1]["job_id"] == "-"


def test_the_callers_request_id_is_kept(client, json_lines):
    response = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert response.headers["X-Request-Id"] == "lb-7f3a.42"
    assert json_lines()[-1]["request_id"] == "lb-7f3a.42"


@pytest.mark.parametrize("hostile", ['a"b', "x y", "<script>", "z" * 200, "\u00e9", ""])
def test_a_hostile_request_id_is_replaced(client, hostile, json_lines):
    response = client.get("/healthz", headers={"X-Request-Id": hostile})
    assert response.headers["X-Request-Id"] != hostile
    assert len(response.headers["X-Request-Id"]) == 32


def test_api_errors_carry_the_request_id_too(client):
    response = client.get("/api/v1/queues")
    assert response.status_code == 401
    assert response.headers["X-Request-Id"]


def test_job_log_lines_carry_the_job_id(app, factory, json_lines):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", 1)], enqueue=False)
    with app.app_context():
        job = get_rq_queue().enqueue(pipeline.RECOMMEND_JOB, ids)
        create_worker(app, simple=True).work(burst=True)
    from_jobs = [e for e in json_lines() if e["logger"].startswith("workers.")]
    assert from_jobs and all(e["job_id"] == job.id for e in from_jobs)
    assert all(e["request_id"] == "-" for e in from_jobs)


def test_extras_and_tracebacks_are_fields(json_lines):
    log = logging.getLogger("review.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed to do it", extra={"item_id": 7})
    entry = json_lines()[-1]
    assert entry["message"] == "failed to do it" and entry["item_id"] == 7
    assert entry["level"] == "ERROR" and "ValueError: boom" in entry["exc"]
