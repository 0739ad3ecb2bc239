"""What the background side is doing: RQ workers and their heartbeats, the job backlog, and
failed jobs (with requeue), for /healthz, /metrics and the admin operations page.

Everything is read from Redis through RQ's own registries, so it covers every worker
process on every host that serves the queue, not just this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rq import Queue as RqQueue
from rq import Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from models import User
from review.services import audit
from review.services.errors import NotFound

# RQ refreshes a worker's heartbeat at least every `worker_ttl` seconds (420 by default,
# sooner while it waits for work); allow one missed beat before calling the worker stale.
HEARTBEAT_GRACE = timedelta(seconds=60)
# Failed jobs listed on the operations page, newest first.
FAILED_JOBS_SHOWN = 50


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str | None
    pid: int | None
    state: str
    started_at: datetime | None
    last_heartbeat: datetime | None
    heartbeat_age_seconds: float | None
    alive: bool
    current_job_id: str | None
    current_job: str | None
    successful_jobs: int
    failed_jobs: int


def workers(rq_queue: RqQueue, now: datetime) -> list[WorkerInfo]:
    """The workers registered on the queue, each with the age of its last heartbeat."""
    found = []
    for worker in Worker.all(queue=rq_queue):
        beat = _aware(worker.last_heartbeat)
        age = (now - beat).total_seconds() if beat else None
        alive = age is not None and age < worker.worker_ttl + HEARTBEAT_GRACE.total_seconds()
        job_id = worker.get_current_job_id()
        job = _fetch(rq_queue, job_id) if job_id else None
        found.append(
            WorkerInfo(
                name=worker.name,
                hostname=worker.hostname,
                pid=worker.pid,
                state=worker.get_state(),
                started_at=_aware(worker.birth_date),
                last_heartbeat=beat,
                heartbeat_age_seconds=age,
                alive=alive,
                current_job_id=job_id,
                current_job=job.description if job else None,
                successful_jobs=worker.successful_job_count,
                failed_jobs=worker.failed_job_count,
            )
        )
    return sorted(found, key=lambda w: w.name)


@dataclass(frozen=True)
class Backlog:
    """The RQ queue's jobs by state, and how long the oldest queued job has waited."""

    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    oldest_queued_seconds: float | None


def backlog(rq_queue: RqQueue, now: datetime) -> Backlog:
    oldest = None
    first_ids = rq_queue.get_job_ids(0, 1)
    if first_ids and (job := _fetch(rq_queue, first_ids[0])) and job.enqueued_at:
        oldest = max(0.0, (now - _aware(job.enqueued_at)).total_seconds())  # type: ignore[operator]
    return Backlog(
        queued=rq_queue.count,
        started=rq_queue.started_job_registry.count,
        scheduled=rq_queue.scheduled_job_registry.count,
        deferred=rq_queue.deferred_job_registry.count,
        failed=rq_queue.failed_job_registry.count,
        oldest_queued_seconds=oldest,
    )


@dataclass(frozen=True)
class FailedJob:
    id: str
    description: str
    failed_at: datetime | None
    error: str


def failed_jobs(rq_queue: RqQueue, limit: int = FAILED_JOBS_SHOWN) -> list[FailedJob]:
    """The most recently failed jobs, with the last line of each one's traceback."""
    registry = FailedJobRegistry(queue=rq_queue)
    jobs = []
    for job_id in registry.get_job_ids(0, limit - 1, desc=True):
        job = _fetch(rq_queue, job_id)
        if job is None:
            continue
        result = job.latest_result()
        trace = (result.exc_string if result else None) or job.exc_info or ""
        jobs.append(
            FailedJob(
                id=job.id,
                description=job.description or job.func_name or job.id,
                failed_at=_aware(job.ended_at),
                error=trace.strip().splitlines()[-1] if trace.strip() else "",
            )
        )
    return jobs


def requeue_failed(session: Session, rq_queue: RqQueue, job_id: str, user: User) -> Job:
    """Put a failed job back on its queue, and say so in the audit log.

    Jobs take ids and are idempotent, so running one again is safe. The audit event is
    added first, so a requeue that fails in Redis leaves no event once the caller rolls
    back. NotFound when the job is not in the failed registry (already requeued, expired).
    """
    registry = FailedJobRegistry(queue=rq_queue)
    job = _fetch(rq_queue, job_id) if job_id in registry else None
    if job is None:
        raise NotFound(
            f"job {job_id[:64]} is not among the failed jobs", {"job_id": "not a failed job"}
        )
    audit.record(
        session, "job.requeued", user=user, job_id=job.id, job=job.description or job.func_name
    )
    session.flush()
    try:
        return registry.requeue(job)
    except (InvalidJobOperation, NoSuchJobError):
        raise NotFound(
            f"job {job_id[:64]} was requeued meanwhile", {"job_id": "not a failed job"}
        ) from None


def _fetch(rq_queue: RqQueue, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=rq_queue.connection, serializer=rq_queue.serializer)
    except NoSuchJobError:
        return None
