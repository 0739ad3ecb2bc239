"""API token scopes: each route needs one, within what the user's role allows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import ApiToken, AuditEvent, Item, User
from review.services import accounts
from review.services.errors import ValidationFailed
from tests.web.api.helpers import error_fields, ingest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_read_only_token_reads_but_cannot_ingest(client, factory, in_db):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    factory.member(queue, owner)
    reader = bearer(factory.token(owner, scopes=["read"]))
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=reader).status_code == 200

    refused = ingest(client, reader, queue.slug, {"external_id": "A-1", "payload": {"t": "x"}})
    assert refused.status_code == 403
    assert "ingest" in error_fields(refused)["scope"]
    assert in_db(lambda s: s.scalar(select(func.count(Item.id)))) == 0

    ingester = bearer(factory.token(owner, scopes=["ingest"]))
    accepted = ingest(client, ingester, queue.slug, {"external_id": "A-1", "payload": {"t": "x"}})
    assert accepted.status_code == 202
    # An ingest-only token cannot read back what it sent.
    item_id = accepted.get_json()["items"][0]["id"]
    assert client.get(f"/api/v1/items/{item_id}", headers=ingester).status_code == 403


def test_default_scopes_are_all_the_role_allows(factory, in_db):
    for role, expected in accounts.ROLE_SCOPES.items():
        factory.token(factory.user(role))
        scopes = in_db(
            lambda s, role=role: s.scalars(
                select(ApiToken.scopes).join(User).where(User.role == role)
            ).one()
        )
        assert tuple(scopes) == expected


@pytest.mark.parametrize(
    ("role", "scopes", "problem"),
    [
        ("reviewer", ["export"], "may not hold export"),
        ("ml", ["admin"], "may not hold admin"),
        ("admin", ["everything"], "unknown: everything"),
        ("admin", [], "choose at least one"),
    ],
)
def test_a_scope_beyond_the_role_is_refused_and_nothing_is_stored(
    factory, in_db, role, scopes, problem
):
    user = factory.user(role)

    def create(session):
        with pytest.raises(ValidationFailed) as raised:
            accounts.create_token(session, session.get(User, user.id), scopes=scopes)
        return raised.value.fields

    assert problem in in_db(create)["scopes"]
    assert in_db(lambda s: s.scalar(select(func.count(ApiToken.id)))) == 0


def test_a_demoted_users_token_loses_what_the_new_role_lacks(client, factory, in_db):
    """Scopes are checked against today's role, not the role the token was made under."""
    queue = factory.queue()
    owner = factory.user("policy_owner")
    factory.member(queue, owner)
    headers = bearer(factory.token(owner))  # ingest, read, decide
    in_db(lambda s: setattr(s.get(User, owner.id), "role", "reviewer"))
    refused = ingest(client, headers, queue.slug, {"external_id": "B-1", "payload": {"t": "x"}})
    assert refused.status_code == 403
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 200


def test_revoking_stops_the_token_at_once_and_is_audited(client, factory, in_db):
    queue = factory.queue()
    admin = factory.user("admin")
    headers = bearer(factory.token(admin))
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 200
    token_id = in_db(lambda s: s.scalar(select(ApiToken.id)))
    in_db(lambda s: accounts.revoke_token(s, token_id, s.get(User, admin.id)))
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 401
    # Revoking again changes nothing and adds no second event.
    in_db(lambda s: accounts.revoke_token(s, token_id, s.get(User, admin.id)))
    events = in_db(
        lambda s: [
            (e.action, e.details["token_id"], e.actor_user_id)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("token.%")))
        ]
    )
    assert events == [("token.created", token_id, admin.id), ("token.revoked", token_id, admin.id)]


def test_a_deactivated_users_tokens_stop_on_the_next_request(client, factory, in_db):
    queue = factory.queue()
    ml = factory.user("ml")
    headers = bearer(factory.token(ml))
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 200
    in_db(lambda s: setattr(s.get(User, ml.id), "is_active", False))
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=headers).status_code == 401


def test_expiry_parsing():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert accounts.parse_expires_in("", now) is None
    assert accounts.parse_expires_in("30d", now) == now + timedelta(days=30)
    assert accounts.parse_expires_in("12h", now) == now + timedelta(hours=12)
    assert accounts.parse_expires_in("90m", now) == now + timedelta(minutes=90)
    assert accounts.parse_expires_in("7", now) == now + timedelta(days=7)
    for bad in ("0d", "-1d", "soon", "5y", "99999d"):
        with pytest.raises(ValidationFailed) as raised:
            accounts.parse_expires_in(bad, now)
        assert "expires_in" in raised.value.fields
