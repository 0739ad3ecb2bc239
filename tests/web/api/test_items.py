"""Reading an item, and reviewers' decisions over the API."""

from __future__ import annotations

from models import Queue, User
from review.db import db_session
from review.services import reviewing
from tests.web.api.helpers import error_fields, ingest, put_policy, recommended

ITEM_KEYS = {
    "id", "queue", "external_id", "status", "final_label", "payload", "priority", "created_at",
    "ai_status", "ai_error", "recommendation", "route", "decision",
}  # fmt: skip


def _ingest_one(client, as_role, slug, item) -> int:
    response = ingest(client, as_role("policy_owner"), slug, item)
    assert response.status_code == 202
    return response.get_json()["items"][0]["id"]


def _decide(client, headers, item_id, **body):
    return client.post(f"/api/v1/items/{item_id}/decision", json=body, headers=headers)


def test_get_item_has_the_documented_shape(client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    response = client.get(f"/api/v1/items/{item_id}", headers=as_role("ml"))
    assert response.status_code == 200
    item = response.get_json()
    assert set(item) == ITEM_KEYS
    assert (item["id"], item["queue"], item["external_id"]) == (item_id, queue.slug, "T-1")
    assert item["status"] == "needs_review"
    assert item["ai_status"] == "ok"
    assert item["recommendation"] == {
        "source": "external",
        "model": "upstream-v2",
        "model_version": None,
        "label": "reject",
        "confidence": 0.7,
        "rationale": "",
        "evidence": [],
        "latency_ms": None,
        "input_tokens": None,
        "output_tokens": None,
        "cache_read_tokens": None,
        "cost_usd": None,
    }
    assert set(item["route"]) == {
        "route",
        "policy_version",
        "threshold",
        "reason",
        "inclusion_probability",
        "audit",
        "routed_at",
    }
    assert item["route"]["route"] == "review"
    assert (item["route"]["inclusion_probability"], item["route"]["audit"]) == (1.0, False)
    assert item["route"]["policy_version"] == 1
    assert item["decision"] is None


def test_unknown_or_malformed_item_id_is_404(client, as_role):
    for raw in ("999999", "abc", "-1", "1.5", "9" * 30):
        response = client.get(f"/api/v1/items/{raw}", headers=as_role("reviewer"))
        assert response.status_code == 404, raw
        assert response.get_json()["error"]["code"] == "not_found"
    decision = _decide(client, as_role("reviewer"), 999999, action="approve")
    assert decision.status_code == 404


def test_reviewer_approves_the_ai_label(client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    response = _decide(client, as_role("reviewer"), item_id, action="approve", comment="fine")
    assert response.status_code == 200
    item = response.get_json()
    assert item["status"] == "decided"
    assert item["final_label"] == "reject"
    assert item["decision"] | {"decided_at": None} == {
        "action": "approved",
        "final_label": "reject",
        "by": as_role.user("reviewer").email,
        "reason_code": None,
        "comment": "fine",
        "decided_at": None,
    }
    fetched = client.get(f"/api/v1/items/{item_id}", headers=as_role("ml")).get_json()
    assert fetched == item


def test_override_needs_a_label_and_a_reason_code(client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    headers = as_role("reviewer")

    missing_reason = _decide(client, headers, item_id, action="override", label="escalate")
    assert missing_reason.status_code == 422
    assert "reason_code" in error_fields(missing_reason)
    bad_label = _decide(client, headers, item_id, action="override", reason_code="wrong_label")
    assert "label" in error_fields(bad_label)
    bad_action = _decide(client, headers, item_id, action="maybe")
    assert "action" in error_fields(bad_action)
    not_object = client.post(f"/api/v1/items/{item_id}/decision", json=[1], headers=headers)
    assert not_object.status_code == 422
    # Overriding to the AI's own label would enter the datasets as a correction of a right
    # answer: refused, naming the field.
    same_label = _decide(
        client, headers, item_id, action="override", label="reject", reason_code="wrong_label"
    )
    assert same_label.status_code == 422
    assert "approve" in error_fields(same_label)["label"]
    still_open = client.get(f"/api/v1/items/{item_id}", headers=headers).get_json()
    assert still_open["status"] == "needs_review"

    response = _decide(
        client, headers, item_id, action="override", label="escalate", reason_code="wrong_label"
    )
    assert response.status_code == 200
    decision = response.get_json()["decision"]
    assert decision["action"] == "overridden"
    assert (decision["final_label"], decision["reason_code"]) == ("escalate", "wrong_label")
    assert response.get_json()["final_label"] == "escalate"


def test_second_decision_is_409_naming_who_decided(client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    assert _decide(client, as_role("reviewer"), item_id, action="approve").status_code == 200

    again = _decide(
        client,
        as_role("admin"),
        item_id,
        action="override",
        label="approve",
        reason_code="wrong_label",
    )
    assert again.status_code == 409
    assert "already decided by" in again.get_json()["error"]["message"]
    item = client.get(f"/api/v1/items/{item_id}", headers=as_role("ml")).get_json()
    assert item["final_label"] == "reject"
    assert item["decision"]["by"] == as_role.user("reviewer").email


def test_auto_approved_item_cannot_be_decided(client, factory, as_role):
    queue = factory.queue()
    put_policy(client, as_role("policy_owner"), queue.slug, 0.9)
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "approve", 0.97))
    response = _decide(client, as_role("reviewer"), item_id, action="approve")
    assert response.status_code == 409
    item = client.get(f"/api/v1/items/{item_id}", headers=as_role("ml")).get_json()
    assert (item["status"], item["decision"]) == ("auto_approved", None)


def test_item_leased_to_another_reviewer_is_409(app, client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    holder = factory.user("reviewer")
    with app.app_context():
        session = db_session()
        leased = reviewing.claim_next(
            session, session.get(Queue, queue.id), session.get(User, holder.id), 300
        )
        session.commit()
        assert leased is not None and leased.id == item_id

    response = _decide(client, as_role("reviewer"), item_id, action="approve")
    assert response.status_code == 409
    assert "leased" in response.get_json()["error"]["message"]


def test_admin_may_decide(client, factory, as_role):
    queue = factory.queue()
    item_id = _ingest_one(client, as_role, queue.slug, recommended("T-1", "reject", 0.7))
    response = _decide(client, as_role("admin"), item_id, action="approve")
    assert response.status_code == 200
    assert response.get_json()["decision"]["by"] == as_role.user("admin").email


def test_approving_an_item_without_recommendation_is_422(client, factory, as_role):
    queue = factory.queue(recommender={"kind": "none"})
    item_id = _ingest_one(client, as_role, queue.slug, {"external_id": "T-1", "payload": {}})
    assert client.get(f"/api/v1/items/{item_id}", headers=as_role("ml")).get_json()["status"] == (
        "needs_review"
    )
    response = _decide(client, as_role("reviewer"), item_id, action="approve")
    assert response.status_code == 422
    assert "action" in error_fields(response)
