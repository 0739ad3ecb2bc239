"""Bearer tokens: who may call what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import ApiToken, Item, PolicyVersion, Queue, User
from models.base import utcnow
from review.services import accounts
from tests.web.api.helpers import error_fields


def test_no_token_is_401_with_a_bearer_challenge(client, factory):
    queue = factory.queue()
    response = client.get(f"/api/v1/queues/{queue.slug}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert "Authorization" in error_fields(response)


@pytest.mark.parametrize(
    "header", ["Bearer rwb_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNzd29yZDE="]
)
def test_unknown_token_or_other_scheme_is_401(client, factory, header):
    queue = factory.queue()
    response = client.get(f"/api/v1/queues/{queue.slug}", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_revoked_token_stops_working(client, factory, as_role, in_db):
    queue = factory.queue()
    headers = as_role("reviewer")
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 200

    def revoke(session):
        for token in session.scalars(select(ApiToken)):
            token.revoked_at = utcnow()

    in_db(revoke)
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 401


def test_expired_token_and_deactivated_user_are_401(client, factory, in_db):
    queue = factory.queue()
    # ML users read every queue, so membership plays no part here.
    expired_owner, active_owner = factory.user("ml"), factory.user("ml")

    def make_tokens(session):
        past = utcnow() - timedelta(minutes=1)
        _, expired = accounts.create_token(session, session.merge(expired_owner), expires_at=past)
        _, live = accounts.create_token(session, session.merge(active_owner))
        return expired, live

    expired, live = in_db(make_tokens)
    url = f"/api/v1/queues/{queue.slug}"
    assert client.get(url, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {live}"}).status_code == 200

    in_db(lambda s: setattr(s.get(User, active_owner.id), "is_active", False))
    assert client.get(url, headers={"Authorization": f"Bearer {live}"}).status_code == 401


def test_token_use_is_recorded(client, factory, as_role, in_db):
    queue = factory.queue()
    client.get(f"/api/v1/queues/{queue.slug}", headers=as_role("ml"))
    last_used = in_db(lambda s: s.scalar(select(ApiToken.last_used_at)))
    assert last_used is not None


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("reviewer", "post", "/api/v1/queues", {"slug": "x"}),
        ("policy_owner", "post", "/api/v1/queues", {"slug": "x"}),
        ("ml", "put", "/api/v1/queues/{slug}/policy", {"default_threshold": 0.5, "note": "n"}),
        (
            "reviewer",
            "put",
            "/api/v1/queues/{slug}/policy",
            {"default_threshold": 0.5, "note": "n"},
        ),
        ("reviewer", "post", "/api/v1/queues/{slug}/items", {"external_id": "a", "payload": {}}),
        ("ml", "post", "/api/v1/queues/{slug}/items", {"external_id": "a", "payload": {}}),
        ("policy_owner", "post", "/api/v1/items/1/decision", {"action": "approve"}),
        ("ml", "post", "/api/v1/items/1/decision", {"action": "approve"}),
        ("reviewer", "get", "/api/v1/queues/{slug}/export.jsonl", None),
        ("policy_owner", "get", "/api/v1/queues/{slug}/export.jsonl", None),
    ],
)
def test_wrong_role_is_403_and_changes_nothing(
    client, factory, as_role, in_db, role, method, path, body
):
    queue = factory.queue()
    response = getattr(client, method)(
        path.format(slug=queue.slug), json=body, headers=as_role(role)
    )
    assert response.status_code == 403
    assert error_fields(response) == {"role": f"{role} is not allowed"}
    assert in_db(lambda s: s.scalar(select(func.count(Item.id)))) == 0
    assert in_db(lambda s: s.scalars(select(Queue.slug)).all()) == [queue.slug]
    assert in_db(lambda s: s.scalar(select(func.max(PolicyVersion.version)))) == 1


def test_any_authenticated_role_may_read_queues_and_policies(client, factory, as_role):
    queue = factory.queue()
    for role in ("reviewer", "policy_owner", "ml", "admin"):
        assert client.get(f"/api/v1/queues/{queue.slug}", headers=as_role(role)).status_code == 200
        assert client.get("/api/v1/queues", headers=as_role(role)).status_code == 200
        policy = client.get(f"/api/v1/queues/{queue.slug}/policy", headers=as_role(role))
        assert policy.status_code == 200
