"""The health check behind /healthz: is the database up, is Redis up, is a worker alive.

Each check fails soft (a result, never an exception) and says only what a load balancer
or an on-call engineer needs: which part is down, in a short fixed phrase. Error details
(hostnames, credentials in URLs, tracebacks) go to the log, never into the answer, since
/healthz needs no login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue as RqQueue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from review.services import background_jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Health:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def down(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "down",
            "down": self.down,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def check_database(session: Session) -> Check:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: database unreachable: %s", exc)
        session.rollback()
        return Check("database", False, "unreachable")
    return Check("database", True, "reachable")


def check_redis(redis: Redis) -> Check:
    try:
        redis.ping()
    except (RedisError, OSError) as exc:
        log.warning("health: Redis unreachable: %s", exc)
        return Check("redis", False, "unreachable")
    return Check("redis", True, "reachable")


def check_workers(rq_queue: RqQueue, now: datetime, redis_ok: bool) -> Check:
    """At least one worker on the queue with a fresh heartbeat."""
    if not redis_ok:
        return Check("workers", False, "unknown: Redis is unreachable")
    try:
        found = background_jobs.workers(rq_queue, now)
    except (RedisError, OSError) as exc:
        log.warning("health: worker registry unreadable: %s", exc)
        return Check("workers", False, "unknown: worker registry unreadable")
    alive = sum(w.alive for w in found)
    if not alive:
        stale = len(found)
        return Check(
            "workers", False, f"no live worker ({stale} stale)" if stale else "no worker running"
        )
    return Check("workers", True, f"{alive} alive")


def health(session: Session, redis: Redis, rq_queue: RqQueue, now: datetime) -> Health:
    redis_check = check_redis(redis)
    return Health(
        [check_database(session), redis_check, check_workers(rq_queue, now, redis_check.ok)]
    )
