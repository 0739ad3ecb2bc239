"""GET /api/v1/queues/<slug>/decisions: a queue's final decisions for systems that poll,
each once, oldest first, once they can no longer be undone."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from models import Item
from review.db import db_session
from review.domain.datasets import reviewer_pseudonym
from tests.web.api.helpers import error_fields, ingest, put_policy, recommended
from tests.web.ui_helpers import cut_redis


def _feed(client, headers, slug, **params):
    response = client.get(f"/api/v1/queues/{slug}/decisions", query_string=params, headers=headers)
    assert response.status_code == 200, response.data[:300]
    return response.get_json()


def _age(app, external_ids, minutes=2) -> None:
    """Move these items' decisions `minutes` into the past (their settle time passed)."""
    with app.app_context():
        session = db_session()
        for item in session.scalars(select(Item).where(Item.external_id.in_(external_ids))):
            item.decided_at -= timedelta(minutes=minutes)
            if item.review is not None:
                item.review.decided_at = item.decided_at
        session.commit()


def _decide(client, headers, item_id, **body):
    response = client.post(f"/api/v1/items/{item_id}/decision", json=body, headers=headers)
    assert response.status_code == 200, response.data[:300]


def test_settled_decisions_come_once_each_in_order_page_by_page(app, client, factory, as_role):
    queue = factory.queue()
    owner, reviewer = as_role("policy_owner"), as_role("reviewer")
    assert put_policy(client, owner, queue.slug, 0.9).status_code == 201
    sent = ingest(
        client,
        owner,
        queue.slug,
        {
            "items": [
                recommended("A-1", "reject", 0.97),  # confident: the policy approves it
                recommended("R-1", "approve", 0.6),
                recommended("R-2", "reject", 0.5),
                recommended("W-1", "approve", 0.4),  # stays waiting
            ]
        },
    )
    ids = {item["external_id"]: item["id"] for item in sent.get_json()["items"]}
    _decide(client, reviewer, ids["R-1"], action="approve")
    _decide(
        client, reviewer, ids["R-2"], action="override", label="escalate", reason_code="wrong_label"
    )

    # Fresh decisions wait out their settle time (a person's could still be undone).
    fresh = _feed(client, as_role("ml"), queue.slug)
    assert (fresh["decisions"], fresh["cursor"], fresh["has_more"]) == ([], None, False)

    _age(app, ["A-1", "R-1", "R-2"])
    first = _feed(client, as_role("ml"), queue.slug, limit=2)
    assert [d["external_id"] for d in first["decisions"]] == ["A-1", "R-1"]
    assert first["has_more"] is True
    auto, approved = first["decisions"]
    assert auto == {
        "cursor": auto["cursor"],
        "queue": queue.slug,
        "item_id": ids["A-1"],
        "external_id": "A-1",
        "final_label": "reject",
        "action": "auto_approved",
        "decided_by": "policy",
        "reviewer_id": None,
        "reason_code": None,
        "ai_label": "reject",
        "ai_confidence": 0.97,
        "ai_model": "upstream-v2",
        "policy_version": 2,
        "decided_at": auto["decided_at"],
    }
    reviewer_user = as_role.user("reviewer")
    pseudonym = reviewer_pseudonym(app.config["SECRET_KEY"], reviewer_user.id)
    assert (approved["action"], approved["decided_by"], approved["reviewer_id"]) == (
        "approved",
        "reviewer",
        pseudonym,
    )
    assert first["cursor"] == approved["cursor"]

    second = _feed(client, as_role("ml"), queue.slug, limit=2, after=first["cursor"])
    [override] = second["decisions"]
    assert (override["external_id"], override["final_label"], override["action"]) == (
        "R-2",
        "escalate",
        "overridden",
    )
    assert (override["ai_label"], override["reason_code"]) == ("reject", "wrong_label")
    assert second["has_more"] is False

    # The cursor goes into a URL as it is, and only into this queue's feed.
    assert re.fullmatch(r"[0-9]+-[0-9]+", second["cursor"])
    other = factory.queue()
    refused = client.get(
        f"/api/v1/queues/{other.slug}/decisions?after={second['cursor']}", headers=as_role("ml")
    )
    assert refused.status_code == 422 and "after" in error_fields(refused)
    # Nothing new: the same cursor back, to ask with again later.
    idle = _feed(client, as_role("ml"), queue.slug, after=second["cursor"])
    assert (idle["decisions"], idle["cursor"]) == ([], second["cursor"])
    # A decision made since comes after the cursor once it has settled.
    _decide(client, reviewer, ids["W-1"], action="approve")
    assert _feed(client, as_role("ml"), queue.slug, after=second["cursor"])["decisions"] == []
    _age(app, ["W-1"])
    later = _feed(client, reviewer, queue.slug, after=second["cursor"])
    assert [d["external_id"] for d in later["decisions"]] == ["W-1"]


def test_bad_cursors_and_limits_name_the_parameter(client, factory, as_role):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/decisions"
    for params, field in (
        ({"after": "yesterday"}, "after"),
        ({"after": "2026-11-28T10:00:00+00:00_12"}, "after"),  # not the cursors' form
        ({"after": "1764322800000000--3"}, "after"),
        ({"after": "9" * 21 + "-1"}, "after"),
        # Well formed, but no decision of this queue: made up, or another queue's.
        ({"after": "1764322800000000-1"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ):
        response = client.get(url, query_string=params, headers=as_role("ml"))
        assert response.status_code == 422, params
        assert field in error_fields(response), params


def test_only_members_and_readers_may_poll(client, factory, as_role):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/decisions"
    assert client.get(url, headers=as_role.outsider("reviewer")).status_code == 403
    assert client.get(url).status_code == 401
    ingest_only = factory.token(factory.user("policy_owner"), scopes=["ingest"])
    refused = client.get(url, headers={"Authorization": f"Bearer {ingest_only}"})
    assert refused.status_code == 403
    assert (
        client.get("/api/v1/queues/no-such-queue/decisions", headers=as_role()).status_code == 404
    )


def test_the_feed_needs_only_the_database(app, client, factory, as_role):
    """With Redis out of reach (worker and webhooks stalled), polling still gets every
    settled decision."""
    queue = factory.queue()
    owner = as_role("policy_owner")
    assert put_policy(client, owner, queue.slug, 0.9).status_code == 201
    ingest(client, owner, queue.slug, {"items": [recommended("A-1", "reject", 0.97)]})
    _age(app, ["A-1"])
    cut_redis(app)
    page = _feed(client, as_role("ml"), queue.slug)
    assert [d["external_id"] for d in page["decisions"]] == ["A-1"]
