"""Helpers for the browser-page tests: items that are ready for review, and page parsing."""

from __future__ import annotations

import re
from typing import Any

from redis import Redis
from rq import Queue as RqQueue

from review.db import db_session
from review.services import ingest, queues


def add_items(
    app,
    queue_slug: str,
    count: int = 1,
    *,
    payload: dict[str, Any] | None = None,
    label: str = "approve",
    confidence: float = 0.42,
    prefix: str = "item",
    with_recommendation: bool = True,
) -> list[str]:
    """Ingest `count` items with an external recommendation (routed to review at once,
    since a new queue's policy auto-approves nothing). Returns their external ids."""
    raw_items = []
    for number in range(1, count + 1):
        raw: dict[str, Any] = {
            "external_id": f"{prefix}-{number}",
            "payload": payload if payload is not None else {"text": f"Ticket {prefix} {number}"},
        }
        if with_recommendation:
            raw["recommendation"] = {
                "label": label,
                "confidence": confidence,
                "model": "test-model",
                "model_version": "7",
                "rationale": "The customer says the issue is solved.",
            }
        raw_items.append(raw)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue_slug)
        parsed, _ = ingest.parse_ingest_body({"items": raw_items}, queue)
        ingest.ingest(session, queue, parsed)
        session.commit()
    return [raw["external_id"] for raw in raw_items]


def shown_item(html: str) -> tuple[int, str] | None:
    """(item id, external id) of the item on a review page or fragment, or None if empty."""
    match = re.search(r'data-item-id="(\d+)" data-external-id="([^"]*)"', html)
    return (int(match.group(1)), match.group(2)) if match else None


def idempotency_key(html: str) -> str:
    """The idempotency key of the decision form on a review page or fragment."""
    return re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)


def htmx_headers(csrf_token: str | None) -> dict[str, str]:
    """What htmx sends when the decision form (target #review-item) is submitted."""
    headers = {"HX-Request": "true", "HX-Target": "review-item"}
    if csrf_token is not None:
        headers["X-CSRFToken"] = csrf_token
    return headers


def reviewer_in(factory, *queues, role: str = "reviewer", email: str | None = None):
    """A new user assigned to these queues (reviewers only work the queues they belong to)."""
    user = factory.user(role, email=email)
    for queue in queues:
        factory.member(queue, user)
    return user


def cut_redis(app) -> None:
    """From now on the app's Redis (and the job queue on it) cannot be reached."""
    dead = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    app.extensions["redis"] = dead
    app.extensions["rq_queue"] = RqQueue("workbench-test", connection=dead)
