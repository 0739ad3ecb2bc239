"""Ingesting items: validation, idempotency on external_id, routing and hand-off to workers."""

from __future__ import annotations

import threading

from redis import Redis
from rq import Queue as RqQueue
from sqlalchemy import func, select

from models import Item
from tests.conftest import login
from tests.web.api.helpers import error_fields, ingest, put_policy, recommended
from tests.web.ui_helpers import reviewer_in


def _item_count(in_db) -> int:
    return in_db(lambda s: s.scalar(select(func.count(Item.id))))


def _enqueued_item_ids(app) -> list[int]:
    connection = Redis.from_url(app.config["REDIS_URL"])
    try:
        rq_queue = RqQueue(app.config["RQ_QUEUE_NAME"], connection=connection)
        return [item_id for job in rq_queue.get_jobs() for item_id in job.args[0]]
    finally:
        connection.close()


def test_single_item_is_accepted_pending_and_handed_to_the_workers(app, client, factory, as_role):
    queue = factory.queue()
    body = {"external_id": "T-1", "payload": {"text": "Where is my parcel?"}, "priority": 5}
    response = ingest(client, as_role("policy_owner"), queue.slug, body)
    assert response.status_code == 202
    [accepted] = response.get_json()["items"]
    assert accepted["external_id"] == "T-1"
    assert accepted["status"] == "pending"
    assert _enqueued_item_ids(app) == [accepted["id"]]

    item = client.get(f"/api/v1/items/{accepted['id']}", headers=as_role("reviewer")).get_json()
    assert item["payload"] == {"text": "Where is my parcel?"}
    assert item["priority"] == 5
    assert item["recommendation"] is None and item["route"] is None


def test_batch_is_accepted_in_order(client, factory, as_role, in_db):
    queue = factory.queue()
    body = {"items": [{"external_id": f"B-{i}", "payload": {"n": i}} for i in range(5)]}
    response = ingest(client, as_role("admin"), queue.slug, body)
    assert response.status_code == 202
    assert [i["external_id"] for i in response.get_json()["items"]] == [f"B-{i}" for i in range(5)]
    assert _item_count(in_db) == 5


def test_invalid_batch_names_each_bad_item_and_writes_nothing(client, factory, as_role, in_db):
    queue = factory.queue()
    items = [{"external_id": f"B-{i}", "payload": {"n": i}} for i in range(5)]
    items[3]["payload"] = "not an object"
    items[1]["external_id"] = ""
    items[4]["recommendation"] = {"label": "maybe", "confidence": 2, "model": "m"}
    response = ingest(client, as_role("policy_owner"), queue.slug, {"items": items})
    assert response.status_code == 422
    fields = error_fields(response)
    assert {
        "items[3].payload",
        "items[1].external_id",
        "items[4].recommendation.label",
        "items[4].recommendation.confidence",
    } <= set(fields)
    assert "items[0].payload" not in fields
    assert _item_count(in_db) == 0


def test_single_item_errors_name_the_field(client, factory, as_role, in_db):
    queue = factory.queue()
    headers = as_role("policy_owner")
    cases = [
        ({"payload": {}}, "external_id"),
        ({"external_id": "x", "payload": []}, "payload"),
        ({"external_id": "x", "payload": {}, "priority": "high"}, "priority"),
        ({"external_id": "x", "payload": {}, "priority": 10**12}, "priority"),
        ({"external_id": "x", "payload": {}, "recommendation": "approve"}, "recommendation"),
        ([{"external_id": "x", "payload": {}}], "body"),
        ({"items": []}, "items"),
        ({"items": "all of them"}, "items"),
    ]
    for body, field in cases:
        response = ingest(client, headers, queue.slug, body)
        assert response.status_code == 422, body
        assert field in error_fields(response), body
    assert _item_count(in_db) == 0


def test_batch_over_1000_is_rejected_whole(client, factory, as_role, in_db):
    queue = factory.queue()
    body = {"items": [{"external_id": f"B-{i}", "payload": {}} for i in range(1001)]}
    response = ingest(client, as_role("policy_owner"), queue.slug, body)
    assert response.status_code == 422
    assert "items" in error_fields(response)
    assert _item_count(in_db) == 0


def test_batch_of_1000_is_accepted(client, factory, as_role, in_db):
    queue = factory.queue()
    body = {"items": [{"external_id": f"B-{i}", "payload": {"n": i}} for i in range(1000)]}
    assert ingest(client, as_role("policy_owner"), queue.slug, body).status_code == 202
    assert _item_count(in_db) == 1000


def test_reingest_with_the_same_payload_returns_the_existing_item(client, factory, as_role, in_db):
    queue = factory.queue()
    headers = as_role("policy_owner")
    first = ingest(client, headers, queue.slug, {"external_id": "T-1", "payload": {"a": 1, "b": 2}})
    # Key order does not matter: the payload is compared canonically.
    again = ingest(client, headers, queue.slug, {"external_id": "T-1", "payload": {"b": 2, "a": 1}})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["items"][0]["id"] == first.get_json()["items"][0]["id"]
    assert _item_count(in_db) == 1


def test_batch_status_is_200_only_when_nothing_is_new(client, factory, as_role, in_db):
    queue = factory.queue()
    headers = as_role("policy_owner")
    old = [{"external_id": "A", "payload": {}}, {"external_id": "B", "payload": {}}]
    assert ingest(client, headers, queue.slug, {"items": old}).status_code == 202
    assert ingest(client, headers, queue.slug, {"items": old}).status_code == 200
    mixed = old + [{"external_id": "C", "payload": {}}]
    response = ingest(client, headers, queue.slug, {"items": mixed})
    assert response.status_code == 202
    assert [i["external_id"] for i in response.get_json()["items"]] == ["A", "B", "C"]
    assert _item_count(in_db) == 3


def test_reingest_with_a_different_payload_is_409_and_writes_nothing(
    client, factory, as_role, in_db
):
    queue = factory.queue()
    headers = as_role("policy_owner")
    ingest(client, headers, queue.slug, {"external_id": "T-1", "payload": {"text": "v1"}})
    batch = {
        "items": [
            {"external_id": "NEW", "payload": {}},
            {"external_id": "T-1", "payload": {"text": "v2"}},
        ]
    }
    response = ingest(client, headers, queue.slug, batch)
    assert response.status_code == 409
    assert "external_id:T-1" in error_fields(response)
    assert _item_count(in_db) == 1
    single = ingest(client, headers, queue.slug, {"external_id": "T-1", "payload": {"text": "v2"}})
    assert single.status_code == 409


def test_recommended_items_are_routed_at_once_under_the_current_policy(
    app, client, factory, as_role
):
    queue = factory.queue()
    assert (
        put_policy(client, as_role("policy_owner"), queue.slug, 0.99, approve=0.9).status_code
        == 201
    )
    body = {
        "items": [
            recommended("sure", "approve", 0.95),
            recommended("unsure", "approve", 0.6),
            recommended("strict-label", "reject", 0.95),  # default threshold 0.99 applies
        ]
    }
    response = ingest(client, as_role("policy_owner"), queue.slug, body)
    assert response.status_code == 202
    statuses = {i["external_id"]: i["status"] for i in response.get_json()["items"]}
    assert statuses == {
        "sure": "auto_approved",
        "unsure": "needs_review",
        "strict-label": "needs_review",
    }
    assert _enqueued_item_ids(app) == []  # nothing left for the recommender

    ids = {i["external_id"]: i["id"] for i in response.get_json()["items"]}
    sure = client.get(f"/api/v1/items/{ids['sure']}", headers=as_role("reviewer")).get_json()
    assert sure["final_label"] == "approve"
    assert sure["recommendation"]["source"] == "external"
    assert sure["recommendation"]["model"] == "upstream-v2"
    assert sure["route"]["route"] == "auto_approve"
    assert sure["route"]["policy_version"] == 2
    assert sure["route"]["threshold"] == 0.9
    assert sure["decision"] is None

    strict = client.get(f"/api/v1/items/{ids['strict-label']}", headers=as_role("reviewer"))
    assert strict.get_json()["route"]["route"] == "review"
    assert strict.get_json()["route"]["threshold"] == 0.99
    assert strict.get_json()["final_label"] is None


def test_unknown_queue_is_404(client, as_role):
    response = ingest(
        client, as_role("admin"), "no-such-queue", {"external_id": "x", "payload": {}}
    )
    assert response.status_code == 404


def test_concurrent_ingests_of_one_external_id_store_one_item(app, factory, as_role, in_db):
    queue = factory.queue()
    headers = as_role("policy_owner")
    body = {"external_id": "RACE-1", "payload": {"text": "same every time"}}
    start = threading.Barrier(8)
    responses: list = [None] * 8

    def post(index: int) -> None:
        client = app.test_client()
        start.wait()
        responses[index] = ingest(client, headers, queue.slug, body)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [202], [r.get_json() for r in responses]
    assert len({r.get_json()["items"][0]["id"] for r in responses}) == 1
    assert _item_count(in_db) == 1


def test_evidence_quotes_are_kept_and_highlighted_for_the_reviewer(app, client, factory, as_role):
    queue = factory.queue()
    item = recommended("q1", "reject", 0.4, text="Please CANCEL my order, it never shipped")
    item["recommendation"]["evidence"] = ["cancel my order", "never shipped"]
    response = ingest(client, as_role("policy_owner"), queue.slug, item)
    assert response.status_code == 202
    item_id = response.get_json()["items"][0]["id"]

    stored = client.get(f"/api/v1/items/{item_id}", headers=as_role("reviewer")).get_json()
    assert stored["recommendation"]["evidence"] == ["cancel my order", "never shipped"]
    login(client, reviewer_in(factory, queue).email)
    page = client.get(f"/queues/{queue.slug}/items/{item_id}").text
    # Found however the text writes it, and marked there.
    assert '<mark class="evidence">CANCEL my order</mark>' in page
    assert '<mark class="evidence">never shipped</mark>' in page


def test_bad_evidence_is_422_naming_the_field_and_writes_nothing(client, factory, as_role, in_db):
    queue = factory.queue()
    for evidence in (
        "cancel my order",
        ["fine", ""],
        ["fine", 3],
        ["x" * 1001],
        [f"quote {n}" for n in range(11)],
    ):
        item = recommended("q1", "reject", 0.4)
        item["recommendation"]["evidence"] = evidence
        response = ingest(client, as_role("policy_owner"), queue.slug, item)
        assert response.status_code == 422, evidence
        assert "at most 10 quotes" in error_fields(response)["recommendation.evidence"]
    assert _item_count(in_db) == 0
