"""Building queues with labeled history for the policy tests.

Items are ingested with their own recommendation, so they are routed at once under the
queue's policy; audit draws come from a scripted sequence so tests know which items are
audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from models import Item, User
from review.db import db_session
from review.services import ingest, members, queues, reviewing, routing


class ScriptedDraws:
    """Stands in for the audit RNG: returns the given draws in order, then 0.99 forever."""

    def __init__(self, draws: Iterable[float]) -> None:
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0) if self._draws else 0.99


@dataclass(frozen=True)
class Row:
    label: str  # the AI's label
    confidence: float
    human: str | None = None  # the reviewer's label, if the item reaches review and is decided
    model: str = "m"  # the recommending model's name


def set_policy(app, slug: str, user, default: float, audit_rate: float = 0.0, **thresholds):
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        body = {
            "default_threshold": default,
            "thresholds": thresholds,
            "audit_rate": audit_rate,
            "note": "test policy",
        }
        version = queues.create_policy_version(session, queue, body, session.merge(user))
        session.commit()
        return version.version


def add_member(app, slug: str, user) -> None:
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        members.add_member(session, queue, session.merge(user), None)
        session.commit()


def seed(app, monkeypatch, slug: str, rows: Sequence[Row], reviewer, draws=(), prefix="x"):
    """Ingest the rows (routed at once), then decide every reviewed row that has a human label.

    Returns the item ids in row order.
    """
    monkeypatch.setattr(routing, "_AUDIT_RNG", ScriptedDraws(draws))
    raw = [
        {
            "external_id": f"{prefix}-{i}",
            "payload": {"text": f"ticket {prefix} {i}"},
            "recommendation": {"label": r.label, "confidence": r.confidence, "model": r.model},
        }
        for i, r in enumerate(rows)
    ]
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        for start in range(0, len(raw), 1000):
            parsed, _ = ingest.parse_ingest_body({"items": raw[start : start + 1000]}, queue)
            ingest.ingest(session, queue, parsed)
        session.commit()
        ids = []
        user = session.get(User, reviewer.id)
        for i, row in enumerate(rows):
            item = (
                session.query(Item).filter_by(queue_id=queue.id, external_id=f"{prefix}-{i}").one()
            )
            ids.append(item.id)
            if row.human is not None and item.status == "needs_review":
                data = (
                    {"action": "approve"}
                    if row.human == row.label
                    else {"action": "override", "label": row.human, "reason_code": "wrong_label"}
                )
                reviewing.decide(session, item.id, user, data)
        session.commit()
        return ids
