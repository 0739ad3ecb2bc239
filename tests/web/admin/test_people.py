"""Admin people pages: invitations, roles, deactivation that bites at once, resets."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import AuditEvent, Invitation, User
from review.db import db_session
from review.services import accounts
from tests.conftest import csrf_from, login


def link_in(html: str) -> str:
    match = re.search(r'id="one-time-link" value="http://localhost(/account/link/[^"]+)"', html)
    assert match, "no one-time link on the page"
    return match.group(1)


def user_row(app, email: str) -> User:
    with app.app_context():
        session = db_session()
        user = session.scalar(select(User).where(User.email == email))
        session.expunge(user)
        return user


def test_deactivated_users_session_and_token_are_refused_on_the_next_request(
    app, client, factory, admin, csrf
):
    reviewer = factory.user("reviewer", email="rev@example.com")
    token = factory.token(reviewer)
    other = app.test_client()
    login(other, "rev@example.com")
    assert other.get("/").status_code == 200
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/queues", headers=auth).status_code == 200

    response = client.post(
        f"/admin/people/{reviewer.id}", data={"action": "deactivate", "csrf_token": csrf}
    )
    assert response.status_code == 303

    assert other.get("/").status_code == 302  # the session no longer logs them in
    assert other.get("/").headers["Location"].startswith("/login")
    assert client.get("/api/v1/queues", headers=auth).status_code == 401
    assert login(app.test_client(), "rev@example.com").status_code == 422
    with app.app_context():
        event = db_session().scalar(
            select(AuditEvent).where(AuditEvent.action == "user.deactivated")
        )
        assert event.details == {"target": "rev@example.com"}
        assert event.actor == "user:admin@example.com"

    client.post(f"/admin/people/{reviewer.id}", data={"action": "activate", "csrf_token": csrf})
    assert client.get("/api/v1/queues", headers=auth).status_code == 200


def test_an_invitation_link_creates_the_account_once(app, client, admin, csrf):
    response = client.post(
        "/admin/people/",
        data={
            "email": "New@Example.com",
            "display_name": "Nia",
            "role": "policy_owner",
            "mode": "invite",
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 200
    path = link_in(response.text)
    assert "new@example.com" in client.get("/admin/people/").text  # pending invitation
    with app.app_context():
        stored = db_session().scalar(select(Invitation))
        assert path.rsplit("/", 1)[1] not in (stored.token_hash, "")  # only the hash is kept

    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200 and "policy owner" in page.text
    token = csrf_from(page.text)
    mismatch = visitor.post(
        path, data={"password": "long-enough", "password_again": "other", "csrf_token": token}
    )
    assert mismatch.status_code == 422
    assert 'id="password_again-error">the two passwords differ<' in mismatch.text
    short = visitor.post(
        path, data={"password": "short", "password_again": "short", "csrf_token": token}
    )
    assert 'id="password-error">must be at least 8 characters<' in short.text
    done = visitor.post(
        path,
        data={
            "password": "long-enough",
            "password_again": "long-enough",
            "display_name": "Nia N",
            "csrf_token": token,
        },
    )
    assert done.status_code == 303
    assert visitor.get("/").status_code == 200  # logged in
    user = user_row(app, "new@example.com")
    assert (user.role, user.display_name) == ("policy_owner", "Nia N")
    assert app.test_client().get(path).status_code == 404  # used once


def test_creating_with_a_password_and_field_errors(app, client, admin, csrf):
    bad = client.post(
        "/admin/people/",
        data={"email": "nope", "role": "boss", "mode": "password", "csrf_token": csrf},
    )
    assert bad.status_code == 422
    assert 'id="email-error">must be an email address<' in bad.text
    assert 'id="role-error">must be one of' in bad.text
    taken = client.post(
        "/admin/people/",
        data={"email": "admin@example.com", "role": "ml", "mode": "invite", "csrf_token": csrf},
    )
    assert 'id="email-error">already has an account<' in taken.text
    ok = client.post(
        "/admin/people/",
        data={
            "email": "ml@example.com",
            "role": "ml",
            "mode": "password",
            "password": "long-enough",
            "csrf_token": csrf,
        },
    )
    assert ok.status_code == 303
    with app.app_context():
        assert accounts.authenticate(db_session(), "ml@example.com", "long-enough") is not None


def test_password_reset_link_sets_a_new_password(app, client, factory, admin, csrf):
    reviewer = factory.user("reviewer", email="rev@example.com", password="old-password")
    response = client.post(
        f"/admin/people/{reviewer.id}", data={"action": "reset", "csrf_token": csrf}
    )
    path = link_in(response.text)
    visitor = app.test_client()
    token = csrf_from(visitor.get(path).text)
    visitor.post(
        path,
        data={"password": "new-password", "password_again": "new-password", "csrf_token": token},
    )
    with app.app_context():
        session = db_session()
        assert accounts.authenticate(session, "rev@example.com", "new-password") is not None
        assert accounts.authenticate(session, "rev@example.com", "old-password") is None


def test_roles_change_but_admins_cannot_lock_themselves_out(app, client, factory, admin, csrf):
    reviewer = factory.user("reviewer", email="rev@example.com")
    client.post(
        f"/admin/people/{reviewer.id}",
        data={"action": "save", "role": "policy_owner", "display_name": "Rev", "csrf_token": csrf},
    )
    assert user_row(app, "rev@example.com").role == "policy_owner"

    demote = client.post(
        f"/admin/people/{admin.id}",
        data={"action": "save", "role": "reviewer", "display_name": "", "csrf_token": csrf},
    )
    assert demote.status_code == 422
    assert "cannot demote yourself" in demote.text
    off = client.post(
        f"/admin/people/{admin.id}", data={"action": "deactivate", "csrf_token": csrf}
    )
    assert off.status_code == 422 and "cannot deactivate yourself" in off.text
    assert user_row(app, "admin@example.com").is_active
