"""The JSONL export of human decisions for the ML team."""

from __future__ import annotations

import json

import pytest

from tests.web.api.helpers import ingest, put_policy, recommended


@pytest.fixture
def decided_queue(client, factory, as_role):
    """A queue with one approval, one override and one auto-approval."""
    queue = factory.queue()
    put_policy(client, as_role("policy_owner"), queue.slug, 0.99)
    body = {
        "items": [
            recommended("kept", "approve", 0.8),
            recommended("corrected", "approve", 0.7),
            recommended("automatic", "reject", 0.995),
        ]
    }
    ids = {
        i["external_id"]: i["id"]
        for i in ingest(client, as_role("policy_owner"), queue.slug, body).get_json()["items"]
    }
    reviewer = as_role("reviewer")
    client.post(
        f"/api/v1/items/{ids['kept']}/decision", json={"action": "approve"}, headers=reviewer
    )
    override = {"action": "override", "label": "escalate", "reason_code": "missing_context"}
    client.post(f"/api/v1/items/{ids['corrected']}/decision", json=override, headers=reviewer)
    return queue


def _rows(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_export_streams_every_human_decision(client, as_role, decided_queue):
    response = client.get(
        f"/api/v1/queues/{decided_queue.slug}/export.jsonl", headers=as_role("ml")
    )
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{decided_queue.slug}-decisions.jsonl"'
    )
    rows = {row["external_id"]: row for row in _rows(response)}
    assert set(rows) == {"kept", "corrected"}  # the auto-approval is not a human decision
    corrected = rows["corrected"]
    assert corrected["overridden"] is True
    assert (corrected["ai_label"], corrected["final_label"]) == ("approve", "escalate")
    assert corrected["reason_code"] == "missing_context"
    assert corrected["reviewer"] == as_role.user("reviewer").email
    assert corrected["policy_version"] == 2
    assert rows["kept"]["overridden"] is False


@pytest.mark.parametrize(("flag", "expected"), [("1", {"corrected"}), ("true", {"corrected"}),
                                               ("0", {"kept", "corrected"}),
                                               ("false", {"kept", "corrected"})])  # fmt: skip
def test_overrides_only_filters(client, as_role, decided_queue, flag, expected):
    url = f"/api/v1/queues/{decided_queue.slug}/export.jsonl?overrides_only={flag}"
    response = client.get(url, headers=as_role("admin"))
    assert response.status_code == 200
    assert {row["external_id"] for row in _rows(response)} == expected


def test_bad_overrides_only_is_400_naming_the_parameter(client, as_role, decided_queue):
    url = f"/api/v1/queues/{decided_queue.slug}/export.jsonl?overrides_only=yes"
    response = client.get(url, headers=as_role("ml"))
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {
        "overrides_only": "must be 1, true, 0 or false"
    }


def test_export_of_unknown_queue_is_404(client, as_role):
    response = client.get("/api/v1/queues/nope/export.jsonl", headers=as_role("ml"))
    assert response.status_code == 404
    assert response.is_json


def _connections_in_use(app) -> int:
    return app.extensions["db"].engine.pool.checkedout()


def test_export_returns_its_database_connection(app, client, as_role, decided_queue):
    url = f"/api/v1/queues/{decided_queue.slug}/export.jsonl"
    for _ in range(3):
        assert len(_rows(client.get(url, headers=as_role("ml")))) == 2
    assert _connections_in_use(app) == 0

    # A client that leaves after the first line must not strand a connection either.
    response = client.get(url, headers=as_role("ml"), buffered=False)
    first_line = next(iter(response.response))
    assert json.loads(first_line)["external_id"] == "kept"
    response.close()
    assert _connections_in_use(app) == 0
