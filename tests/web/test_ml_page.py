"""The ML page: counts per queue and JSONL downloads of the decisions."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from models import AuditEvent
from review.db import db_session
from tests.conftest import csrf_from, login
from tests.web.ui_helpers import add_items, htmx_headers, reviewer_in, shown_item


def review_all(client, slug: str, decisions: list[dict[str, str]]) -> None:
    """Decide the queue's items in order through the review screen."""
    page = client.get(f"/queues/{slug}/review").text
    token = csrf_from(page)
    for decision in decisions:
        item_id, _ = shown_item(page)
        response = client.post(
            f"/queues/{slug}/items/{item_id}/decision", data=decision, headers=htmx_headers(token)
        )
        assert response.status_code == 200
        page = response.text


def test_ml_page_counts_and_downloads_overrides(app, factory):
    support = factory.queue("support", name="Support tickets")
    factory.queue("refunds", name="Refund requests")
    add_items(app, "support", 3)
    reviewer = app.test_client()
    login(reviewer, reviewer_in(factory, support, email="rev@example.com").email)
    review_all(
        reviewer,
        "support",
        [
            {"action": "approve"},
            {
                "action": "override",
                "label": "escalate",
                "reason_code": "policy_exception",
                "comment": "Needs <legal> review",
            },
            {"action": "approve"},
        ],
    )

    ml = app.test_client()
    ml_user = factory.user("ml")
    login(ml, ml_user.email)
    page = ml.get("/ml/").text
    row = re.search(r'<tr data-queue="support">(.*?)</tr>', page, re.S).group(1)
    assert 'data-count="decisions">3<' in row and 'data-count="overrides">1<' in row
    assert 'href="/ml/queues/support/export.jsonl"' in row
    assert 'href="/ml/queues/support/export.jsonl?overrides_only=1"' in row
    empty_row = re.search(r'<tr data-queue="refunds">(.*?)</tr>', page, re.S).group(1)
    assert 'data-count="decisions">0<' in empty_row

    everything = ml.get("/ml/queues/support/export.jsonl")
    assert everything.status_code == 200
    assert everything.mimetype == "application/x-ndjson"
    assert 'filename="support-decisions.jsonl"' in everything.headers["Content-Disposition"]
    rows = [json.loads(line) for line in everything.text.splitlines()]
    assert [row["overridden"] for row in rows] == [False, True, False]

    overrides = ml.get("/ml/queues/support/export.jsonl?overrides_only=1")
    [override] = [json.loads(line) for line in overrides.text.splitlines()]
    assert override["queue"] == "support"
    assert (override["ai_label"], override["final_label"]) == ("approve", "escalate")
    assert override["reason_code"] == "policy_exception"
    assert override["comment"] == "Needs <legal> review"
    assert override["reviewer"] == "rev@example.com"
    assert override["model"] == "test-model"

    with app.app_context():
        events = (
            db_session()
            .scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "export.downloaded")
                .order_by(AuditEvent.id)
            )
            .all()
        )
        assert [(e.actor, e.details["overrides_only"]) for e in events] == [
            (f"user:{ml_user.email}", False),
            (f"user:{ml_user.email}", True),
        ]


def test_export_of_an_unknown_queue_is_404(client, factory):
    login(client, factory.user("ml").email)
    assert client.get("/ml/queues/nope/export.jsonl").status_code == 404


def test_export_of_a_queue_without_decisions_is_empty(client, factory):
    factory.queue("support")
    login(client, factory.user("ml").email)
    response = client.get("/ml/queues/support/export.jsonl")
    assert response.status_code == 200
    assert response.text == ""
