"""The queue JSON's `retired_labels` and `display_fields`, and PATCH /queues/<slug>."""

from __future__ import annotations

import pytest

from models import AuditEvent
from tests.web.api.helpers import error_fields, ingest, recommended

NEW_QUEUE = {
    "slug": "refunds",
    "name": "Refunds",
    "labels": ["refund", "deny", "escalate"],
    "reason_codes": ["ai_misread"],
    "display_fields": ["amount", "reason"],
}


@pytest.fixture
def refunds(client, as_role):
    response = client.post("/api/v1/queues", json=NEW_QUEUE, headers=as_role("admin"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_created_queue_shows_display_fields_and_no_retired_labels(client, as_role, refunds):
    assert refunds["display_fields"] == ["amount", "reason"]
    assert refunds["retired_labels"] == []
    fetched = client.get("/api/v1/queues/refunds", headers=as_role("reviewer")).get_json()
    assert fetched["display_fields"] == ["amount", "reason"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"display_fields": "amount"}, "display_fields"),
        ({"display_fields": ["amount", 3]}, "display_fields"),
        ({"display_fields": ["x" * 101]}, "display_fields"),
        ({"retired_labels": ["deny"]}, "retired_labels"),
    ],
)
def test_bad_settings_on_create_are_422_naming_the_field(client, as_role, change, field):
    response = client.post("/api/v1/queues", json=NEW_QUEUE | change, headers=as_role("admin"))
    assert response.status_code == 422
    assert field in error_fields(response)
    assert client.get("/api/v1/queues/refunds", headers=as_role()).status_code == 404


def test_patch_changes_only_the_fields_given(client, as_role, refunds):
    response = client.patch(
        "/api/v1/queues/refunds", json={"display_fields": ["reason"]}, headers=as_role("admin")
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["display_fields"] == ["reason"]
    assert {k: v for k, v in body.items() if k != "display_fields"} == {
        k: v for k, v in refunds.items() if k != "display_fields"
    }


def test_a_label_in_use_is_retired_only_when_named(client, as_role, in_db, refunds):
    assert ingest(
        client, as_role("admin"), "refunds", recommended("R-1", "deny", 0.5)
    ).status_code in (200, 202)
    refused = client.patch(
        "/api/v1/queues/refunds", json={"labels": ["refund", "escalate"]}, headers=as_role()
    )
    assert refused.status_code == 422
    assert "deny" in error_fields(refused)["labels"]
    assert client.get("/api/v1/queues/refunds", headers=as_role()).get_json() == refunds

    retired = client.patch(
        "/api/v1/queues/refunds",
        json={"labels": ["refund", "escalate"], "retired_labels": ["deny"]},
        headers=as_role(),
    )
    assert retired.status_code == 200, retired.get_json()
    assert retired.get_json()["labels"] == ["refund", "escalate"]
    assert retired.get_json()["retired_labels"] == ["deny"]
    actions = in_db(lambda s: [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)])
    assert actions[-1] == "queue.updated"

    # Putting the label back in `labels` reinstates it.
    back = client.patch(
        "/api/v1/queues/refunds", json={"labels": ["refund", "escalate", "deny"]}, headers=as_role()
    )
    assert back.get_json()["retired_labels"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"retired_labels": ["never-a-label"]}, "retired_labels"),
        ({"retired_labels": "deny"}, "retired_labels"),
        ({"retired_labels": ["deny"]}, "retired_labels"),  # still in labels
        ({"display_fields": [""]}, "display_fields"),
        ({"slug": "renamed"}, "slug"),
        ({"colour": "blue"}, "colour"),
        ({"labels": ["only"]}, "labels"),
        ({"recommender": {"kind": "magic"}}, "recommender.kind"),
    ],
)
def test_bad_patch_is_422_naming_the_field_and_changes_nothing(
    client, as_role, refunds, body, field
):
    response = client.patch("/api/v1/queues/refunds", json=body, headers=as_role())
    assert response.status_code == 422
    assert field in error_fields(response)
    assert client.get("/api/v1/queues/refunds", headers=as_role()).get_json() == refunds


def test_only_admins_patch(client, as_role, refunds):
    response = client.patch(
        "/api/v1/queues/refunds", json={"name": "Mine"}, headers=as_role("policy_owner")
    )
    assert response.status_code == 403
    assert client.patch("/api/v1/queues/nope", json={}, headers=as_role()).status_code == 404
