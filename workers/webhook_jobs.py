"""Delivering decision webhooks: one RQ job per attempt, plus the sweep for lost jobs.

`deliver_event(event_pk)` claims the event's next attempt (committed before any byte
leaves, so a second job for the same event does nothing), POSTs the signed body with
explicit timeouts, then records the answer: delivered on 2xx, otherwise another attempt
after a growing pause (WEBHOOK_RETRY_INTERVALS), and a dead letter after the last one.
Redirects are not followed: a receiver that moved must be configured anew.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.orm import Session

from models.base import utcnow
from review.db import get_database
from review.domain.webhooks import max_attempts, retry_delay, signature
from review.redis_conn import get_rq_queue
from review.sealed_secrets import SecretBox
from review.services import webhook_outbox

log = logging.getLogger(__name__)

USER_AGENT = "ReviewWorkbench-Webhooks/1"
# Bounds one sweep's job burst; the rest waits for the next sweep.
MAX_EVENTS_PER_SWEEP = 5000
# How much of a failing receiver's answer is kept for the dead-letter page.
ERROR_EXCERPT = 300


@dataclass(frozen=True)
class Settings:
    timeout_seconds: float
    retry_intervals: list[float]
    pseudonym_secret: str
    secrets: SecretBox  # opens the webhook's sealed signing secret

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        return cls(
            float(config["WEBHOOK_TIMEOUT_SECONDS"]),
            [float(s) for s in config["WEBHOOK_RETRY_INTERVALS"]],
            str(config["SECRET_KEY"]),
            SecretBox.from_config(config),
        )

    @property
    def in_flight_seconds(self) -> float:
        """After this long an unfinished attempt counts as lost (its worker died): past
        what the connect and read timeouts allow one attempt. Should a receiver dribble
        its answer beyond that, a second attempt may overlap: at least once, not at most."""
        return 2 * self.timeout_seconds + 5


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    duration_ms: float


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is then raised as an HTTPError: a failed attempt


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(attempt: webhook_outbox.Attempt, timeout_seconds: float) -> Answer:
    """POST the attempt's body, signed, and report what came back (never raises)."""
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        attempt.url,
        data=attempt.body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Webhook-Id": attempt.event_id,
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Signature": signature(attempt.secret, timestamp, attempt.body),
        },
    )
    started = time.perf_counter()
    try:
        # `timeout` bounds the connect and every read of the answer.
        with _OPENER.open(request, timeout=timeout_seconds) as response:
            code, error = response.status, None
    except urllib.error.HTTPError as exc:
        excerpt = exc.read(ERROR_EXCERPT).decode("utf-8", "replace") if exc.fp else ""
        code, error = exc.code, f"HTTP {exc.code}: {excerpt}".strip()
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        code, error = None, f"{type(exc).__name__}: {reason}"[:ERROR_EXCERPT]
    return Answer(code, error, (time.perf_counter() - started) * 1000)


def deliver_event(event_pk: int) -> str:
    """Make the event's next delivery attempt if it is due. Returns the event's status
    afterwards, or "skipped" when there was nothing to do (not due, done, or taken)."""
    settings = Settings.from_config(current_app.config)
    database = get_database()
    with database.session() as session:
        attempt = webhook_outbox.claim(
            session,
            event_pk,
            utcnow(),
            max_attempts=max_attempts(settings.retry_intervals),
            in_flight_seconds=settings.in_flight_seconds,
            pseudonym_secret=settings.pseudonym_secret,
            secrets=settings.secrets,
        )
    if attempt is None:
        return "skipped"
    answer = post(attempt, settings.timeout_seconds)
    retry_in = retry_delay(settings.retry_intervals, attempt.number)
    with database.session() as session:
        status = webhook_outbox.finish(
            session,
            attempt,
            utcnow(),
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=answer.duration_ms,
            retry_in=retry_in,
        )
    log.info(
        "webhook event %s attempt %d: %s -> %s",
        attempt.event_id,
        attempt.number,
        answer.status_code or answer.error,
        status,
    )
    if status == "pending" and retry_in is not None:
        _schedule_retry(get_rq_queue(), event_pk, retry_in)
    return status


def _schedule_retry(rq_queue: Queue, event_pk: int, delay_seconds: float) -> None:
    try:
        webhook_outbox.enqueue(rq_queue, event_pk, utcnow() + timedelta(seconds=delay_seconds))
    except RedisError as exc:
        log.warning("could not schedule webhook retry for %s (%s); the sweeper will", event_pk, exc)


def sweep_webhooks(session: Session, rq_queue: Queue, older_than_seconds: float) -> int:
    """Enqueue delivery jobs for events whose job was lost; commits first (see
    webhook_outbox.stale_event_ids). Returns how many were enqueued."""
    ids = webhook_outbox.stale_event_ids(
        session, utcnow(), older_than_seconds, MAX_EVENTS_PER_SWEEP
    )
    session.commit()
    enqueued = 0
    try:
        for event_pk in ids:
            webhook_outbox.enqueue(rq_queue, event_pk)
            enqueued += 1
    except RedisError as exc:
        log.warning("could not re-enqueue webhook events (%s); next sweep", exc)
    if enqueued:
        log.info("re-enqueued %d webhook events", enqueued)
    return enqueued
