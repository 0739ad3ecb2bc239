"""Bad requests get JSON errors with a 4xx, never HTML and never a 500."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from models import Item
from tests.web.api.helpers import error_fields


def _post_raw(client, headers, url, data: str | bytes, content_type="application/json"):
    return client.post(url, data=data, content_type=content_type, headers=headers)


def test_unknown_endpoint_is_json_404(client, as_role):
    for path in ("/api/v1/nothing-here", "/api/v1/", "/api/v1/items/1/nothing"):
        response = client.get(path, headers=as_role("reviewer"))
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405_listing_the_allowed_ones(client, factory, as_role):
    queue = factory.queue()
    response = client.delete(f"/api/v1/queues/{queue.slug}/policy", headers=as_role("admin"))
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "PUT"}


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("external_id=x&payload=y", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("", "application/json"),
        ('{"external_id": "x", "payload": {"score": NaN}}', "application/json"),
        ('{"external_id": "x", "payload": {}, "priority": 1e999}', "application/json"),
        ('{"external_id": "x", "payload": {"n": 1' + "0" * 30 + "}}", "application/json"),
        ("[" * 50_000 + "]" * 50_000, "application/json"),
        (b'{"external_id": "\xff"}', "application/json"),
    ],
)
def test_body_that_is_not_strict_json_is_400(client, factory, as_role, in_db, data, content_type):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/items"
    response = _post_raw(client, as_role("policy_owner"), url, data, content_type)
    assert response.status_code == 400
    assert error_fields(response) == {"body": "must be valid JSON"}
    assert in_db(lambda s: s.scalar(select(func.count(Item.id)))) == 0


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"external_id": "a\u0000b", "payload": {}}, "external_id"),
        ({"external_id": "a", "payload": {"text": "x\u0000"}}, "payload.text"),
        ({"external_id": "\ud800", "payload": {}}, "external_id"),
    ],
)
def test_unstorable_text_is_422_naming_the_field(client, factory, as_role, in_db, item, field):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/items"
    response = _post_raw(client, as_role("policy_owner"), url, json.dumps(item))
    assert response.status_code == 422
    assert field in error_fields(response)
    assert in_db(lambda s: s.scalar(select(func.count(Item.id)))) == 0


def test_huge_confidence_and_priority_are_validation_errors(client, factory, as_role):
    queue = factory.queue()
    item = {
        "external_id": "a",
        "payload": {},
        "priority": 2**62,
        "recommendation": {"label": "approve", "confidence": 2**62, "model": "m"},
    }
    response = client.post(
        f"/api/v1/queues/{queue.slug}/items", json=item, headers=as_role("policy_owner")
    )
    assert response.status_code == 422
    assert {"priority", "recommendation.confidence"} <= set(error_fields(response))


def test_body_over_the_size_limit_is_json_413(app, client, factory, as_role):
    queue = factory.queue()
    app.config["MAX_CONTENT_LENGTH"] = 1024
    item = {"external_id": "big", "payload": {"text": "x" * 2048}}
    response = client.post(
        f"/api/v1/queues/{queue.slug}/items", json=item, headers=as_role("policy_owner")
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_wrong_types_in_a_decision_are_422(client, factory, as_role):
    queue = factory.queue()
    item = {
        "external_id": "T-1",
        "payload": {},
        "recommendation": {"label": "reject", "confidence": 0.5, "model": "m"},
    }
    created = client.post(
        f"/api/v1/queues/{queue.slug}/items", json=item, headers=as_role("policy_owner")
    )
    item_id = created.get_json()["items"][0]["id"]
    response = client.post(
        f"/api/v1/items/{item_id}/decision",
        json={"action": "override", "label": ["escalate"], "reason_code": 3, "comment": 5},
        headers=as_role("reviewer"),
    )
    assert response.status_code == 422
    assert {"label", "reason_code", "comment"} <= set(error_fields(response))


def test_overlong_model_version_is_422_not_a_database_error(client, factory, as_role, in_db):
    queue = factory.queue()
    recommendation = {
        "label": "approve",
        "confidence": 0.5,
        "model": "m",
        "model_version": "v" * 101,
    }
    item = {"external_id": "a", "payload": {}, "recommendation": recommendation}
    response = client.post(
        f"/api/v1/queues/{queue.slug}/items", json=item, headers=as_role("policy_owner")
    )
    assert response.status_code == 422
    assert "recommendation.model_version" in error_fields(response)
    assert in_db(lambda s: s.scalar(select(func.count(Item.id)))) == 0
