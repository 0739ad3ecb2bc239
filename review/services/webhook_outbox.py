"""The webhook outbox: final decisions written as events in the deciding transaction.

Guarantees, and how they are kept:
- *Never before the decision is committed*: the event row is inserted by the same
  transaction as the decision, and jobs are only enqueued after that commit
  (`enqueue_after_commit`); a rolled-back decision leaves no event behind.
- *At least once*: an event stays `pending`/`sending` until a receiver answers 2xx. A lost
  job (Redis restarted, worker killed mid-send) is found again by the sweeper
  (`stale_event_ids`), so receivers must deduplicate on X-Webhook-Id.
- *Only final decisions*: an auto-approval is final at once. A reviewer's decision may be
  undone by its author for UNDO_SECONDS (review_actions.undo), so its event is held until
  the undo window has closed (plus a grace for clocks and slow transactions). An undo
  inside the window cancels the held event in the undo's own transaction; should the event
  have been claimed for sending already, the undo is refused instead. No "correction"
  event is ever needed: nothing is sent until the decision can no longer change.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rq import Queue as RqQueue
from sqlalchemy import ColumnElement, Select, bindparam, event, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import (
    Item,
    PolicyVersion,
    Queue,
    QueueWebhook,
    Recommendation,
    Review,
    RoutingRecord,
    WebhookDelivery,
    WebhookEvent,
)
from models.base import utcnow
from review.domain.datasets import reviewer_pseudonym
from review.sealed_secrets import SecretBox, SecretUnreadable, is_sealed
from review.services.errors import Conflict
from review.services.statements import built_once, rowcount

log = logging.getLogger(__name__)

EVENT_TYPE = "item.decided"
DELIVER_JOB = "workers.webhook_jobs.deliver_event"
# One attempt: the HTTP timeouts (WEBHOOK_TIMEOUT_SECONDS, 10 by default) and two short
# transactions. A job past this is stopped by RQ and the attempt is redone by the sweeper.
DELIVER_JOB_TIMEOUT_SECONDS = 120
# Slack after the undo window before a human decision is sent: the undo's own check and
# transaction take a moment, and the worker's clock may differ a little from the web's.
UNDO_GRACE_SECONDS = 5
# session.info keys: events to enqueue once the transaction commits, and per-transaction
# knowledge of which queues have a webhook (a batch of 500 routings asks once per queue).
_NEW_EVENTS = "webhook_outbox.new_events"
_HOOKED_QUEUES = "webhook_outbox.hooked_queues"


def _webhook_configured(session: Session, queue_id: int) -> bool:
    known: dict[int, bool] = session.info.setdefault(_HOOKED_QUEUES, {})
    if queue_id not in known:
        found = session.scalar(_webhook_of_queue_statement(), {"b_queue": queue_id})
        known[queue_id] = found is not None
    return known[queue_id]


@built_once
def _webhook_of_queue_statement() -> Select[int]:
    # Asked on every decision: built once, as the review loop's statements are (building a
    # statement cost more CPU than running it).
    return select(QueueWebhook.id).where(QueueWebhook.queue_id == bindparam("b_queue")).limit(1)


def configured_sql(queue_id: Any) -> ColumnElement[bool]:
    """SQL: the queue `queue_id` (a column or a bound parameter) has a webhook. A query that
    loads a queue anyway can ask this in passing and tell remember_configuration."""
    return exists().where(QueueWebhook.queue_id == queue_id)


def remember_configuration(session: Session, queue_id: int, configured: bool) -> None:
    """What a query of this transaction found out with configured_sql: the review loop
    loads its queue in the same query as the member check, which saves every decision a
    query of its own to ask whether its queue has a webhook."""
    session.info.setdefault(_HOOKED_QUEUES, {})[queue_id] = configured


def forget_configuration(session: Session) -> None:
    """Call after changing a queue's webhook inside a session that may route items next."""
    session.info.pop(_HOOKED_QUEUES, None)


def _add_event(
    session: Session, item: Item, queue: Queue, facts: dict[str, Any], deliver_at: datetime
) -> WebhookEvent | None:
    if not _webhook_configured(session, queue.id):
        return None
    outbox_event = WebhookEvent(
        event_id=str(uuid.uuid4()),
        type=EVENT_TYPE,
        queue_id=queue.id,
        item_id=item.id,
        facts=facts,
        status="pending",
        attempts=0,
        next_attempt_at=deliver_at,
    )
    session.add(outbox_event)
    session.info.setdefault(_NEW_EVENTS, []).append(outbox_event)
    return outbox_event


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_auto_approval(
    session: Session,
    item: Item,
    queue: Queue,
    recommendation: Recommendation,
    policy: PolicyVersion,
) -> WebhookEvent | None:
    """Write the event for an item the policy just auto-approved (final at once).

    Returns None when the queue has no webhook: decisions made before one is set up are
    not sent later.
    """
    facts = {
        "queue": queue.slug,
        "item_id": item.id,
        "external_id": item.external_id,
        "final_label": item.final_label,
        "action": "auto_approved",
        "decided_by": "policy",
        "reviewer_user_id": None,
        "ai_label": recommendation.label,
        "ai_confidence": recommendation.confidence,
        "ai_model": recommendation.model,
        "policy_version": policy.version,
        "decided_at": _iso(item.decided_at),
    }
    return _add_event(session, item, queue, facts, item.decided_at or utcnow())


def _routing_policy_version(session: Session, item_id: int) -> int | None:
    """The policy version of the item's latest routing (the one that sent it to people)."""
    return session.scalar(
        select(PolicyVersion.version)
        .join(RoutingRecord, RoutingRecord.policy_version_id == PolicyVersion.id)
        .where(RoutingRecord.item_id == item_id)
        .order_by(RoutingRecord.id.desc())
        .limit(1)
    )


def record_review(session: Session, item: Item, review: Review) -> WebhookEvent | None:
    """Write the event for a reviewer's decision, held until its undo window has closed."""
    # Imported here: review_actions imports reviewing, which calls this module.
    from review.services.review_actions import UNDO_SECONDS

    # Most queues have no webhook: find out before loading what the event would carry
    # (two queries in every decision's round trip otherwise).
    if not _webhook_configured(session, item.queue_id):
        return None
    recommendation = item.recommendation
    facts = {
        "queue": item.queue.slug,
        "item_id": item.id,
        "external_id": item.external_id,
        "final_label": review.final_label,
        "action": review.action,
        "decided_by": "reviewer",
        "reviewer_user_id": review.reviewer_id,
        "ai_label": review.ai_label,
        "ai_confidence": recommendation.confidence if recommendation else None,
        "ai_model": recommendation.model if recommendation else None,
        "policy_version": _routing_policy_version(session, item.id),
        "decided_at": _iso(review.decided_at),
    }
    hold = timedelta(seconds=UNDO_SECONDS + UNDO_GRACE_SECONDS)
    return _add_event(session, item, item.queue, facts, review.decided_at + hold)


def withdraw_for_undo(session: Session, item_id: int) -> int:
    """Cancel the held event of a decision being undone. Returns how many were cancelled.

    Raises Conflict if an event for the item has already been claimed for sending (or
    sent): the downstream system may know the decision, so it can no longer be undone.
    """
    cancelled = rowcount(
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.item_id == item_id, WebhookEvent.status == "pending")
            .values(status="cancelled", last_error="the decision was undone before it was sent")
            .execution_options(synchronize_session=False)
        )
    )
    sent = session.scalar(
        select(
            exists().where(
                WebhookEvent.item_id == item_id,
                WebhookEvent.status.in_(("sending", "delivered", "dead")),
            )
        )
    )
    if sent:
        raise Conflict(
            "the decision has already been sent to the queue's webhook",
            {"item": "already sent downstream"},
        )
    return cancelled


# --- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One claimed delivery attempt: everything the sender needs, outside any transaction."""

    event_pk: int
    event_id: str
    number: int
    url: str
    secret: str
    body: bytes


def render_body(outbox_event: WebhookEvent, pseudonym_secret: str) -> str:
    """The JSON body receivers get. Reviewers appear only as stable pseudonyms (the same
    `rv-...` ids as in dataset snapshots), never by name or email."""
    facts = dict(outbox_event.facts)
    user_id = facts.pop("reviewer_user_id", None)
    body = {
        "id": outbox_event.event_id,
        "type": outbox_event.type,
        "created_at": _iso(outbox_event.created_at),
        **facts,
        "reviewer_id": reviewer_pseudonym(pseudonym_secret, user_id) if user_id else None,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def claim(
    session: Session,
    event_pk: int,
    now: datetime,
    *,
    max_attempts: int,
    in_flight_seconds: float,
    pseudonym_secret: str,
    secrets: SecretBox,
) -> Attempt | None:
    """Take the event's next attempt if it is due, or None (not due, done, or taken).

    The claim is one conditional UPDATE, so two jobs for the same event cannot both send
    it; `next_attempt_at` becomes the moment an unfinished attempt counts as lost, after
    which the sweeper hands the event to another job. An event whose last allowed attempt
    never reported back is declared dead here. The caller commits before sending.

    The webhook's secret is opened with `secrets` (a secret stored before sealing is
    sealed here). One this server cannot open fails the attempt, which is retried and may
    end dead, to be replayed once an admin has set the secret again: never sent unsigned.
    """
    result = session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_pk,
            WebhookEvent.status.in_(("pending", "sending")),
            WebhookEvent.next_attempt_at <= now,
            WebhookEvent.attempts < max_attempts,
        )
        .values(
            status="sending",
            attempts=WebhookEvent.attempts + 1,
            next_attempt_at=now + timedelta(seconds=in_flight_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    claimed = rowcount(result)
    if claimed != 1:
        _bury_lost_last_attempt(session, event_pk, now, max_attempts)
        return None
    outbox_event = session.get(WebhookEvent, event_pk, populate_existing=True)
    assert outbox_event is not None
    webhook = session.scalar(
        select(QueueWebhook).where(QueueWebhook.queue_id == outbox_event.queue_id)
    )
    if webhook is None:
        outbox_event.status = "dead"
        outbox_event.last_error = "the queue has no webhook any more"
        return None
    try:
        secret = secrets.open(webhook.secret)
    except SecretUnreadable as error:
        # Recorded as a failed send: retried once its in-flight time has passed, dead
        # after the last attempt.
        last = outbox_event.attempts >= max_attempts
        _record_outcome(
            session,
            outbox_event.id,
            outbox_event.attempts,
            webhook.url,
            now,
            status_code=None,
            error=f"not sent: the webhook secret is {error}",
            duration_ms=0.0,
            retry_in=None if last else in_flight_seconds,
        )
        return None
    if not is_sealed(webhook.secret):  # stored before secrets were sealed
        webhook.secret = secrets.seal(secret)
    if outbox_event.body is None:
        outbox_event.body = render_body(outbox_event, pseudonym_secret)
    return Attempt(
        event_pk=outbox_event.id,
        event_id=outbox_event.event_id,
        number=outbox_event.attempts,
        url=webhook.url,
        secret=secret,
        body=outbox_event.body.encode(),
    )


def _bury_lost_last_attempt(
    session: Session, event_pk: int, now: datetime, max_attempts: int
) -> None:
    session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_pk,
            WebhookEvent.status == "sending",
            WebhookEvent.next_attempt_at <= now,
            WebhookEvent.attempts >= max_attempts,
        )
        .values(status="dead", last_error="the last attempt never reported back")
        .execution_options(synchronize_session=False)
    )


def finish(
    session: Session,
    attempt: Attempt,
    now: datetime,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    retry_in: float | None,
) -> str:
    """Record an attempt's outcome; returns the event's new status.

    2xx: delivered. Otherwise pending again in `retry_in` seconds, or dead when None.
    Only the attempt that still holds the claim moves the event; a late one (its claim
    was taken over after it counted as lost) is only logged as a delivery.
    """
    _record_outcome(
        session,
        attempt.event_pk,
        attempt.number,
        attempt.url,
        now,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
        retry_in=retry_in,
    )
    current = session.scalar(select(WebhookEvent.status).where(WebhookEvent.id == attempt.event_pk))
    return current or "missing"


def _record_outcome(
    session: Session,
    event_pk: int,
    number: int,
    url: str,
    now: datetime,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    retry_in: float | None,
) -> None:
    """The delivery row of attempt `number`, and the event moved on if that attempt still
    holds its claim (see finish)."""
    delivered = status_code is not None and 200 <= status_code < 300
    session.add(
        WebhookDelivery(
            event_id=event_pk,
            attempt=number,
            url=url,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            created_at=now,
        )
    )
    values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
    if delivered:
        values |= {"status": "delivered", "delivered_at": now}
    elif retry_in is None:
        values |= {"status": "dead"}
    else:
        values |= {"status": "pending", "next_attempt_at": now + timedelta(seconds=retry_in)}
    session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_pk,
            WebhookEvent.status == "sending",
            WebhookEvent.attempts == number,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def stale_event_ids(
    session: Session, now: datetime, older_than_seconds: float, limit: int
) -> list[int]:
    """Events due for longer than `older_than_seconds` yet still waiting: their job was
    lost (Redis restarted, worker killed). Their due time is moved to now, so the next
    sweep leaves them alone while the job about to be enqueued runs."""
    cutoff = now - timedelta(seconds=older_than_seconds)
    ids = list(
        session.scalars(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.status.in_(("pending", "sending")),
                WebhookEvent.next_attempt_at < cutoff,
            )
            .order_by(WebhookEvent.next_attempt_at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids), WebhookEvent.next_attempt_at < cutoff)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


# --- enqueueing ----------------------------------------------------------------------------


def enqueue(rq_queue: RqQueue, event_pk: int, at: datetime | None = None) -> None:
    """Enqueue a delivery job (at `at` if that is in the future). Raises RedisError."""
    options = {
        "job_timeout": DELIVER_JOB_TIMEOUT_SECONDS,
        "result_ttl": 0,
        "failure_ttl": 7 * 24 * 3600,
    }
    if at is not None and at > utcnow():
        rq_queue.enqueue_at(at, DELIVER_JOB, event_pk, **options)
    else:
        rq_queue.enqueue(DELIVER_JOB, event_pk, **options)


def remember_for_enqueue(session: Session, events: Sequence[WebhookEvent]) -> None:
    """Have these events' jobs enqueued when the session's transaction commits."""
    session.info.setdefault(_NEW_EVENTS, []).extend(events)


def enqueue_after_commit(session_factory: sessionmaker[Session], rq_queue: RqQueue) -> None:
    """Enqueue a delivery job for every event a session wrote, right after it commits.

    Never raises: the decision is committed by then, and a job Redis refused is found
    later by the sweeper. A rolled-back transaction forgets its events.
    """

    @event.listens_for(session_factory, "after_commit")
    def _enqueue_new_events(session: Session) -> None:
        session.info.pop(_HOOKED_QUEUES, None)
        new_events: list[WebhookEvent] = session.info.pop(_NEW_EVENTS, [])
        for outbox_event in new_events:
            try:
                enqueue(rq_queue, outbox_event.id, outbox_event.next_attempt_at)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning(
                    "could not enqueue webhook event %s (%s); the sweeper will",
                    outbox_event.id,
                    exc,
                )
                break  # Redis is down: the rest would fail the same way, slowly

    @event.listens_for(session_factory, "after_rollback")
    def _forget_new_events(session: Session) -> None:
        session.info.pop(_HOOKED_QUEUES, None)
        session.info.pop(_NEW_EVENTS, None)
