"""The admin page for API tokens: create (secret shown once), list, revoke; all audited."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from models import ApiToken, AuditEvent
from models.base import utcnow
from review.db import db_session


def _secret_on(page: str) -> str | None:
    match = re.search(r'id="token-secret" value="([^"]+)"', page)
    return match.group(1) if match else None


def _token_count(app) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count(ApiToken.id)))


def _audited(app, action: str) -> list[dict]:
    with app.app_context():
        events = db_session().scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return [e.details for e in events]


def test_admin_creates_a_scoped_token_sees_the_secret_once_and_it_works(
    app, client, csrf, factory, admin
):
    queue = factory.queue("support")
    ml = factory.user("ml", email="trainer@example.com")
    response = client.post(
        "/admin/tokens/",
        data={
            "csrf_token": csrf,
            "user_id": str(ml.id),
            "name": "nightly export",
            "scopes": ["read"],
            "expires_in": "30d",
        },
    )
    assert response.status_code == 200
    secret = _secret_on(response.text)
    assert secret and secret.startswith("rwb_")

    api = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=api).status_code == 200
    assert client.get(f"/api/v1/queues/{queue.slug}/export.jsonl", headers=api).status_code == 403

    listing = client.get("/admin/tokens/").text
    assert _secret_on(listing) is None and secret not in listing  # shown once only
    row = re.search(r'<tr data-token="(rwb_[^"]+)".*?</tr>', listing, re.S)
    assert secret.startswith(row.group(1))
    for shown in ("trainer@example.com", "nightly export", "read", "live"):
        assert shown in row.group(0)
    assert "never" not in row.group(0)  # it was used, and it expires
    expires = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert expires in row.group(0)
    [created] = _audited(app, "token.created")
    assert created["owner"] == "trainer@example.com" and created["scopes"] == ["read"]


def test_revoking_in_the_ui_stops_the_token_and_is_audited(app, client, csrf, factory, admin):
    queue = factory.queue("support")
    secret = factory.token(factory.user("ml"))
    api = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=api).status_code == 200
    with app.app_context():
        token_id = db_session().scalar(select(ApiToken.id))

    response = client.post(
        f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=True
    )
    assert "stops working now" in response.text
    assert "revoked" in re.search(r"<tr data-token=.*?</tr>", response.text, re.S).group(0)
    assert client.get(f"/api/v1/queues/{queue.slug}", headers=api).status_code == 401
    [revoked] = _audited(app, "token.revoked")
    assert revoked["token_id"] == token_id
    assert client.post("/admin/tokens/999999/revoke", data={"csrf_token": csrf}).status_code == 404


def test_bad_input_is_shown_next_to_the_field_and_creates_nothing(
    client, csrf, factory, admin, app
):
    reviewer = factory.user("reviewer", email="rita@example.com")
    cases = [
        ({"user_id": str(reviewer.id), "scopes": ["export"]}, "scopes", "may not hold export"),
        ({"user_id": str(reviewer.id)}, "scopes", "choose at least one"),
        ({"user_id": "", "scopes": ["read"]}, "user_id", "choose an active user"),
        (
            {"user_id": str(reviewer.id), "scopes": ["read"], "expires_in": "soon"},
            "expires_in",
            "like 30d",
        ),
    ]
    for data, field, message in cases:
        response = client.post("/admin/tokens/", data={"csrf_token": csrf, **data})
        assert response.status_code == 422
        assert re.search(rf'id="{field}-error">[^<]*{message}', response.text), (field, message)
        assert _secret_on(response.text) is None
    assert _token_count(app) == 0


def test_a_deactivated_users_token_shows_as_stopped(client, factory, admin):
    from tests.conftest import csrf_from

    user = factory.user("ml", email="gone@example.com")
    factory.token(user)
    page = client.get(f"/admin/people/{user.id}").text
    client.post(
        f"/admin/people/{user.id}",
        data={"csrf_token": csrf_from(page), "action": "deactivate"},
    )
    listing = client.get("/admin/tokens/").text
    row = re.search(r"<tr data-token=.*?</tr>", listing, re.S).group(0)
    assert "gone@example.com" in row and "user deactivated" in row
