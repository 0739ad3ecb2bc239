"""A queue's decision webhook (URL and secret), and what admins see and replay of it.

The secret signs every delivery and is never handed back: reads say only that one is set.
Every change and every replay is audited. Events themselves are written by
webhook_outbox, in the transactions that make decisions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from models import Item, Queue, QueueWebhook, User, WebhookDelivery, WebhookEvent
from models.base import utcnow
from models.webhook import WEBHOOK_EVENT_STATUSES
from review.domain.webhooks import secret_problem, url_problem
from review.sealed_secrets import SEALED_PREFIX, SecretBox, SecretUnreadable
from review.services import audit
from review.services.errors import NotFound, ValidationFailed
from review.services.webhook_outbox import forget_configuration, remember_for_enqueue

# How many dead letters and deliveries the admin page lists.
PAGE_ROWS = 100


def webhook_for(session: Session, queue: Queue) -> QueueWebhook | None:
    return session.scalar(select(QueueWebhook).where(QueueWebhook.queue_id == queue.id))


def set_webhook(
    session: Session, queue: Queue, data: object, user: User, secrets: SecretBox
) -> QueueWebhook:
    """Create or replace the queue's webhook from `{"url", "secret"}` (audited). The
    secret is stored sealed by `secrets`.

    Raises ValidationFailed naming each bad field; nothing changes then.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    errors = {
        field: problem
        for field, problem in (
            ("url", url_problem(data.get("url"))),
            ("secret", secret_problem(data.get("secret"))),
        )
        if problem is not None
    }
    if unknown := sorted(set(data) - {"url", "secret"}):
        errors[unknown[0]] = "is not a webhook setting (use url and secret)"
    if errors:
        raise ValidationFailed("invalid webhook", errors)
    webhook = webhook_for(session, queue)
    created = webhook is None
    if webhook is None:
        webhook = QueueWebhook(queue_id=queue.id)
        session.add(webhook)
    secret_changed = created or _stored_secret(webhook, secrets) != data["secret"]
    webhook.url = data["url"]
    webhook.secret = secrets.seal(data["secret"])
    webhook.updated_by_id = user.id
    webhook.updated_at = utcnow()
    audit.record(
        session,
        "webhook.created" if created else "webhook.changed",
        user=user,
        queue_id=queue.id,
        url=webhook.url,
        secret_changed=secret_changed,  # never the secret itself
    )
    session.flush()
    forget_configuration(session)
    return webhook


def _stored_secret(webhook: QueueWebhook, secrets: SecretBox) -> str | None:
    """The webhook's secret as it is now, or None when this server cannot open it."""
    try:
        return secrets.open(webhook.secret)
    except SecretUnreadable:
        return None


def seal_plain_secrets(session: Session, secrets: SecretBox) -> int:
    """Seal the webhook secrets stored before sealing existed (a queue whose webhook has
    had no delivery since keeps its secret in the clear until then). Returns how many.
    Nothing is audited: the secret stays the same."""
    plain = session.scalars(
        select(QueueWebhook).where(~QueueWebhook.secret.startswith(SEALED_PREFIX))
    ).all()
    for webhook in plain:
        webhook.secret = secrets.seal(webhook.secret)
    return len(plain)


def delete_webhook(session: Session, queue: Queue, user: User) -> bool:
    """Remove the queue's webhook (audited). Events not yet sent go to the dead letters
    when their turn comes, where an admin can replay them once a webhook is set again."""
    webhook = webhook_for(session, queue)
    if webhook is None:
        return False
    audit.record(session, "webhook.deleted", user=user, queue_id=queue.id, url=webhook.url)
    session.delete(webhook)
    session.flush()
    forget_configuration(session)
    return True


def backlog(session: Session, queue_id: int | None = None) -> Counter[str]:
    """How many events are in each status, for one queue or all."""
    query = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    if queue_id is not None:
        query = query.where(WebhookEvent.queue_id == queue_id)
    return Counter({status: count for status, count in session.execute(query)})


def as_dict(session: Session, queue: Queue, webhook: QueueWebhook | None) -> dict[str, Any]:
    """The queue's webhook as the API shows it: never the secret."""
    counts = backlog(session, queue.id)
    return {
        "url": webhook.url if webhook else None,
        "secret_set": webhook is not None,
        "updated_at": webhook.updated_at.isoformat() if webhook else None,
        "events": {status: counts.get(status, 0) for status in WEBHOOK_EVENT_STATUSES},
    }


# --- the admin page ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxOverview:
    webhooks: list[QueueWebhook]
    counts: Counter[str]
    dead: list[WebhookEvent]
    deliveries: list[WebhookDelivery]


def overview(session: Session) -> OutboxOverview:
    """Configured webhooks, event counts, the dead letters and the latest deliveries."""
    webhooks = list(
        session.scalars(
            select(QueueWebhook)
            .join(Queue)
            .options(selectinload(QueueWebhook.queue))
            .order_by(Queue.name)
        )
    )
    dead = list(
        session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.status == "dead")
            .options(selectinload(WebhookEvent.queue))
            .order_by(WebhookEvent.id.desc())
            .limit(PAGE_ROWS)
        )
    )
    deliveries = list(
        session.scalars(
            select(WebhookDelivery)
            .options(selectinload(WebhookDelivery.event).selectinload(WebhookEvent.queue))
            .order_by(WebhookDelivery.id.desc())
            .limit(PAGE_ROWS)
        )
    )
    return OutboxOverview(webhooks, backlog(session), dead, deliveries)


def external_ids(session: Session, events: list[WebhookEvent]) -> dict[int, str]:
    """Item id -> external id for these events, in one query."""
    ids = {e.item_id for e in events}
    if not ids:
        return {}
    rows = session.execute(select(Item.id, Item.external_id).where(Item.id.in_(ids)))
    return {item_id: external_id for item_id, external_id in rows}


def replay(session: Session, user: User, event_pk: int | None = None) -> int:
    """Send dead events again from a fresh round of attempts: one event, or all of them.

    Audited; the jobs are enqueued when the caller commits. Returns how many were replayed.
    """
    query = select(WebhookEvent).where(WebhookEvent.status == "dead")
    if event_pk is not None:
        query = query.where(WebhookEvent.id == event_pk)
    dead = list(session.scalars(query.order_by(WebhookEvent.id).with_for_update()))
    if event_pk is not None and not dead:
        raise NotFound(f"no dead webhook event {event_pk}", {"event": "not a dead letter"})
    if not dead:
        return 0
    now = utcnow()
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_([e.id for e in dead]), WebhookEvent.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
        .execution_options(synchronize_session="fetch")
    )
    remember_for_enqueue(session, dead)
    audit.record(
        session,
        "webhook.replayed",
        user=user,
        queue_id=dead[0].queue_id if event_pk is not None else None,
        item_id=dead[0].item_id if event_pk is not None else None,
        events=[e.event_id for e in dead][:1000],
        count=len(dead),
    )
    return len(dead)
