"""Request helpers shared by the API tests."""

from __future__ import annotations

from typing import Any


def error_fields(response) -> dict[str, str]:
    """The `fields` of a JSON error response, after checking the error shape."""
    assert response.is_json, response.data[:200]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"}
    return error["fields"]


def ingest(client, headers, slug: str, body: Any):
    return client.post(f"/api/v1/queues/{slug}/items", json=body, headers=headers)


def put_policy(client, headers, slug: str, default: float, note: str = "tuned", **thresholds):
    return client.put(
        f"/api/v1/queues/{slug}/policy",
        json={"thresholds": thresholds, "default_threshold": default, "note": note},
        headers=headers,
    )


def recommended(external_id: str, label: str, confidence: float, **payload) -> dict[str, Any]:
    """An item that brings its own recommendation, so it is routed at ingest."""
    return {
        "external_id": external_id,
        "payload": payload or {"text": f"ticket {external_id}"},
        "recommendation": {"label": label, "confidence": confidence, "model": "upstream-v2"},
    }
