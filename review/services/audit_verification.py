"""Full chain verification in the background, for logs too long to verify in a request.

The admin page verifies inline up to AUDIT_INLINE_VERIFY_MAX events; beyond that it asks a
worker (workers/audit_jobs.py `verify_chain_job`) and shows the last result kept in Redis.
A lost result only means the page offers to verify again: the chain itself is in the
database, and `flask audit verify` checks it without Redis.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue as RqQueue

from review.services.audit_chain import ChainReport

log = logging.getLogger(__name__)

VERIFY_JOB = "workers.audit_jobs.verify_chain_job"
# A full verification of tens of millions of events takes a while; never cut it short.
VERIFY_JOB_TIMEOUT_SECONDS = 6 * 3600
DEFAULT_INLINE_MAX = 50_000


def _key(rq_queue: RqQueue) -> str:
    return f"{rq_queue.name}:audit-verification"


def _save(connection: Redis, key: str, state: dict[str, Any]) -> None:
    connection.set(key, json.dumps(state))


def request(rq_queue: RqQueue, now: datetime) -> bool:
    """Ask a worker to verify the chain, unless one is already on it. False if Redis is down."""
    try:
        current = last(rq_queue)
        if current and current["state"] in ("queued", "running"):
            return True
        previous = current.get("report") if current else None
        _save(
            rq_queue.connection,
            _key(rq_queue),
            {"state": "queued", "requested_at": now.isoformat(), "report": previous},
        )
        rq_queue.enqueue(VERIFY_JOB, job_timeout=VERIFY_JOB_TIMEOUT_SECONDS, result_ttl=3600)
    except RedisError as exc:
        log.warning("could not request an audit verification: %s", exc)
        return False
    return True


def mark_running(rq_queue: RqQueue, now: datetime) -> None:
    state = last(rq_queue) or {"report": None}
    _save(
        rq_queue.connection,
        _key(rq_queue),
        {**state, "state": "running", "started_at": now.isoformat()},
    )


def save_report(rq_queue: RqQueue, report: ChainReport, now: datetime) -> None:
    _save(
        rq_queue.connection,
        _key(rq_queue),
        {"state": "done", "finished_at": now.isoformat(), "report": report.as_dict()},
    )


def last(rq_queue: RqQueue) -> dict[str, Any] | None:
    """The background verification's state: queued, running or done, with the last report
    (None if never run, or if Redis is unreachable)."""
    try:
        raw = rq_queue.connection.get(_key(rq_queue))
    except RedisError:
        return None
    return json.loads(raw) if raw else None


def last_report(state: dict[str, Any] | None) -> ChainReport | None:
    if not state or not state.get("report"):
        return None
    return ChainReport.from_dict(state["report"])
