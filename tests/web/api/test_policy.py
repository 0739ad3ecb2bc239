"""Reading and changing a queue's threshold policy."""

from __future__ import annotations

import pytest

from tests.web.api.helpers import error_fields, put_policy


def test_put_policy_creates_the_next_version(client, factory, as_role):
    queue = factory.queue()
    response = put_policy(
        client,
        as_role("policy_owner"),
        queue.slug,
        0.95,
        note="calibrated on May data",
        approve=0.9,
    )
    assert response.status_code == 201
    assert response.get_json()["version"] == 2

    current = client.get(f"/api/v1/queues/{queue.slug}/policy", headers=as_role("reviewer"))
    assert current.get_json() | {"created_at": None, "activated_at": None} == {
        "version": 2,
        "status": "active",
        "thresholds": {"approve": 0.9},
        "default_threshold": 0.95,
        "audit_rate": 0.0,
        "recalibration": None,
        "note": "calibrated on May data",
        "rollback_of": None,
        "created_at": None,
        "activated_at": None,
    }


def test_admin_may_change_the_policy(client, factory, as_role):
    queue = factory.queue()
    assert put_policy(client, as_role("admin"), queue.slug, 0.8).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"thresholds": {"approve": 1.5}, "default_threshold": 0.9, "note": "n"},
            "thresholds.approve",
        ),
        (
            {"thresholds": {"approve": -0.1}, "default_threshold": 0.9, "note": "n"},
            "thresholds.approve",
        ),
        (
            {"thresholds": {"approve": "high"}, "default_threshold": 0.9, "note": "n"},
            "thresholds.approve",
        ),
        ({"thresholds": {"spam": 0.9}, "default_threshold": 0.9, "note": "n"}, "thresholds.spam"),
        ({"thresholds": [0.9], "default_threshold": 0.9, "note": "n"}, "thresholds"),
        ({"thresholds": {}, "default_threshold": 2, "note": "n"}, "default_threshold"),
        ({"thresholds": {}, "default_threshold": True, "note": "n"}, "default_threshold"),
        ({"thresholds": {}, "note": "n"}, "default_threshold"),
        ({"thresholds": {}, "default_threshold": 0.9}, "note"),
        ({"thresholds": {}, "default_threshold": 0.9, "note": "   "}, "note"),
        ([0.9], "body"),
    ],
)
def test_invalid_policy_is_422_naming_the_field_and_keeps_the_version(
    client, factory, as_role, body, field
):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/policy"
    response = client.put(url, json=body, headers=as_role("policy_owner"))
    assert response.status_code == 422
    assert field in error_fields(response)
    assert client.get(url, headers=as_role("ml")).get_json()["version"] == 1


def test_huge_threshold_is_a_4xx_not_a_crash(client, factory, as_role):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/policy"
    for raw in ("1e999", "1" + "0" * 400, "NaN"):
        body = '{"thresholds": {"approve": RAW}, "default_threshold": 0.9, "note": "n"}'
        body = body.replace("RAW", raw)
        response = client.put(
            url, data=body, content_type="application/json", headers=as_role("policy_owner")
        )
        assert response.status_code == 400, raw
        assert error_fields(response) == {"body": "must be valid JSON"}
    assert client.get(url, headers=as_role("ml")).get_json()["version"] == 1
