"""Helpers for the worker tests: realistic tickets per label, ingest, run a worker, decide."""

from __future__ import annotations

import random
from collections.abc import Iterable

from sqlalchemy import select

from models import Item, User
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import ingest, pipeline, queues, reviewing
from workers.worker import create_worker

# Words that give each label away, mixed with words every ticket uses.
TELLS = {
    "approve": ["resolved", "thanks", "working", "fixed", "great", "confirmed", "solved", "neat"],
    "reject": ["spam", "unsubscribe", "lottery", "winner", "crypto", "prize", "click", "bitcoin"],
    "escalate": ["lawyer", "chargeback", "breach", "lawsuit", "fraud", "police", "stolen", "sue"],
}
COMMON = ["order", "account", "ticket", "please", "today", "support", "invoice", "team", "hello"]


def ticket(label: str, n: int) -> dict:
    """A deterministic support ticket whose words point to `label`."""
    rng = random.Random(f"{label}-{n}")
    words = rng.sample(TELLS[label], 3) + rng.sample(COMMON, 4)
    rng.shuffle(words)
    return {
        "subject": " ".join(words[:3]),
        "body": " ".join(words[3:]),
        "customer": {"tier": rng.choice(["free", "pro"]), "channel": rng.choice(["email", "chat"])},
    }


def add_items(
    app, queue_slug: str, payloads: Iterable[dict], *, enqueue: bool = True, prefix: str = "t"
) -> list[int]:
    """Ingest payloads through the service layer and commit, as the API does.

    With enqueue=False nothing reaches Redis, as when Redis is down at ingest.
    """
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue_slug)
        body = {
            "items": [
                {"external_id": f"{prefix}-{i}", "payload": p} for i, p in enumerate(payloads)
            ]
        }
        items, _ = ingest.parse_ingest_body(body, queue)
        ids = [r.item.id for r in ingest.ingest(session, queue, items) if r.created]
        session.commit()
        if enqueue:
            assert pipeline.enqueue_recommendations(get_rq_queue(), ids)
        return ids


def run_worker(app) -> None:
    """Run a real RQ worker in burst mode until the queue is empty."""
    with app.app_context():
        create_worker(app, simple=True).work(burst=True)


def items_by_id(app, ids: Iterable[int]) -> dict[int, Item]:
    with app.app_context():
        session = db_session()
        found = session.scalars(select(Item).where(Item.id.in_(list(ids)))).all()
        for item in found:
            _ = item.recommendation, item.routings  # load before the session closes
        session.expunge_all()
        return {item.id: item for item in found}


def decide_as_truth(app, reviewer: User, truth: dict[int, str]) -> None:
    """A reviewer decides each item with its true label: approve when the AI was right."""
    with app.app_context():
        session = db_session()
        user = session.merge(reviewer)
        for item_id, label in truth.items():
            item = session.get(Item, item_id)
            if item.recommendation is not None and item.recommendation.label == label:
                data = {"action": "approve"}
            else:
                data = {"action": "override", "label": label, "reason_code": "wrong_label"}
            reviewing.decide(session, item_id, user, data)
        session.commit()


def seed_decisions(
    app,
    queue_slug: str,
    reviewer: User,
    per_label: int,
    labels=("approve", "reject", "escalate"),
    offset: int = 0,
) -> dict[int, str]:
    """Ingest per_label tickets per label, let the worker route them, decide them all.

    Returns {item id: true label}.
    """
    payloads, truth_labels = [], []
    for label in labels:
        for n in range(offset, offset + per_label):
            payloads.append(ticket(label, n))
            truth_labels.append(label)
    ids = add_items(app, queue_slug, payloads, prefix=f"seed{offset}")
    run_worker(app)
    truth = dict(zip(ids, truth_labels, strict=True))
    decide_as_truth(app, reviewer, truth)
    return truth
