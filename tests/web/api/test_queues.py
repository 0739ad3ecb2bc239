"""Creating, reading and listing queues."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Queue
from tests.web.api.helpers import error_fields

NEW_QUEUE = {
    "slug": "refund-requests",
    "name": "Refund requests",
    "labels": ["refund", "deny"],
    "instructions": "Refund when the order arrived damaged.",
    "reason_codes": ["ai_misread", "policy_exception"],
    "recommender": {"kind": "claude", "model": "claude-sonnet-4-5"},
}


def test_admin_creates_a_queue_then_anyone_reads_it(client, as_role):
    response = client.post("/api/v1/queues", json=NEW_QUEUE, headers=as_role("admin"))
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/api/v1/queues/refund-requests")
    created = response.get_json()
    assert created["labels"] == ["refund", "deny"]
    assert created["recommender"] == {
        "kind": "claude",
        "model": "claude-sonnet-4-5",
        "daily_budget_usd": None,
        "redact": True,
        "redact_patterns": [],
        "batch": False,
    }

    fetched = client.get("/api/v1/queues/refund-requests", headers=as_role("reviewer"))
    assert fetched.status_code == 200
    assert fetched.get_json() == created

    policy = client.get("/api/v1/queues/refund-requests/policy", headers=as_role("reviewer"))
    assert policy.get_json()["version"] == 1
    assert policy.get_json()["default_threshold"] == 1.0  # auto-approves nothing at first


def test_list_queues(client, factory, as_role):
    factory.queue("alpha", name="Alpha")
    factory.queue("beta", name="Beta")
    response = client.get("/api/v1/queues", headers=as_role("ml"))
    assert response.status_code == 200
    assert [q["slug"] for q in response.get_json()["queues"]] == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": 7}, "slug"),
        ({"name": ""}, "name"),
        ({"labels": ["only-one"]}, "labels"),
        ({"labels": "refund,deny"}, "labels"),
        ({"labels": ["refund", "refund"]}, "labels"),
        ({"reason_codes": []}, "reason_codes"),
        ({"instructions": ["not", "text"]}, "instructions"),
        ({"recommender": {"kind": "magic"}}, "recommender.kind"),
        ({"recommender": {"kind": "claude", "model": 5}}, "recommender.model"),
        ({"recommender": "claude"}, "recommender"),
    ],
)
def test_invalid_queue_is_422_naming_the_field(client, as_role, in_db, change, field):
    response = client.post("/api/v1/queues", json=NEW_QUEUE | change, headers=as_role("admin"))
    assert response.status_code == 422
    assert field in error_fields(response)
    assert in_db(lambda s: s.scalar(select(func.count(Queue.id)))) == 0


def test_empty_object_names_every_required_field(client, as_role):
    response = client.post("/api/v1/queues", json={}, headers=as_role("admin"))
    assert response.status_code == 422
    assert {"slug", "name", "labels", "reason_codes"} <= set(error_fields(response))


def test_duplicate_slug_is_409(client, factory, as_role, in_db):
    factory.queue("refund-requests", name="Original")
    response = client.post("/api/v1/queues", json=NEW_QUEUE, headers=as_role("admin"))
    assert response.status_code == 409
    assert error_fields(response) == {"slug": "already exists"}
    assert in_db(lambda s: s.scalars(select(Queue.name)).all()) == ["Original"]


def test_unknown_queue_is_404(client, as_role):
    for path in ("/api/v1/queues/nope", "/api/v1/queues/nope/policy", "/api/v1/queues/NOPE%00"):
        response = client.get(path, headers=as_role("reviewer"))
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
