"""Helpers for the webhook tests: a queue with a policy and a webhook, auto-approved
items, reading the outbox, running delivery jobs."""

from __future__ import annotations

from sqlalchemy import select

from models import User, WebhookEvent
from review.db import db_session
from review.sealed_secrets import SecretBox
from review.services import ingest, queues, webhooks
from tests.fakes.webhook_receiver import SECRET
from tests.workers.helpers import run_worker

# Retries at once, so a burst worker runs a whole round of attempts.
FAST_RETRIES = {"WEBHOOK_RETRY_INTERVALS": [0, 0, 0], "WEBHOOK_TIMEOUT_SECONDS": 5.0}


def hooked_queue(
    app, factory, url: str, secret: str = SECRET, threshold: float = 0.9, **queue_fields
):
    """A queue (by default without a recommender) whose policy auto-approves at
    `threshold`, with a webhook at `url`. Returns the queue (detached)."""
    queue = factory.queue(**({"recommender": {"kind": "none"}} | queue_fields))
    owner = factory.user("policy_owner")
    with app.app_context():
        session = db_session()
        row = queues.get_queue(session, queue.slug)
        user = session.get(User, owner.id)
        queues.create_policy_version(
            session, row, {"default_threshold": threshold, "note": "webhook tests"}, user
        )
        secrets = SecretBox.from_config(app.config)
        webhooks.set_webhook(session, row, {"url": url, "secret": secret}, user, secrets)
        session.commit()
    return queue


def add_decided_items(
    app, slug: str, count: int, *, confidence: float = 0.99, prefix: str = "w"
) -> list[int]:
    """Ingest items that bring a confident recommendation: the policy approves them in the
    ingest transaction. Returns their ids."""
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        body = {
            "items": [
                {
                    "external_id": f"{prefix}-{n}",
                    "payload": {"text": f"ticket {n}"},
                    "recommendation": {
                        "label": "approve",
                        "confidence": confidence,
                        "model": "upstream-v2",
                    },
                }
                for n in range(count)
            ]
        }
        items, _ = ingest.parse_ingest_body(body, queue)
        ids = [r.item.id for r in ingest.ingest(session, queue, items) if r.created]
        session.commit()
        return ids


def outbox(app) -> list[WebhookEvent]:
    """Every outbox event, oldest first, detached with its deliveries loaded."""
    with app.app_context():
        session = db_session()
        events = list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
        for event in events:
            _ = event.deliveries
        session.expunge_all()
        return events


def deliver_all(app) -> None:
    """Run the queued delivery jobs (and the retries they enqueue) in a burst worker."""
    run_worker(app)
