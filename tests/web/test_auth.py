"""Logging in and out, per-role landing pages, role checks and error pages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditEvent
from review.db import db_session
from tests.conftest import csrf_from, login


def audit_actions(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db_session().scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(row.action, row.actor) for row in rows]


@pytest.mark.parametrize(
    ("role", "home"),
    [("reviewer", "/"), ("ml", "/ml/"), ("policy_owner", "/"), ("admin", "/")],
)
def test_login_sends_each_role_to_its_home_page(app, client, factory, role, home):
    user = factory.user(role)
    response = login(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == home
    page = client.get(home)
    assert page.status_code == 200
    assert user.email in page.text
    assert ("auth.login", f"user:{user.email}") in audit_actions(app)


def test_login_is_case_insensitive_on_email(client, factory):
    factory.user("reviewer", email="casey@example.com")
    assert login(client, "Casey@Example.COM").headers["Location"] == "/"


def test_wrong_password_shows_one_message_and_starts_no_session(app, client, factory):
    user = factory.user("reviewer")
    response = login(client, user.email, "wrong-password")
    assert response.status_code == 422
    assert "Invalid email or password." in response.text
    assert 'value="' + user.email + '"' in response.text  # the email is kept for a retry
    assert client.get("/").status_code == 302  # still anonymous
    assert ("auth.login_failed", "system") in audit_actions(app)


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client, factory):
    user = factory.user("reviewer")
    unknown = login(client, "nobody@example.com").text
    wrong = login(client, user.email, "wrong-password").text

    def message(html: str) -> str:
        return re.search(r'<p class="form-error"[^>]*>([^<]+)</p>', html).group(1)

    assert message(unknown) == message(wrong) == "Invalid email or password."


def test_empty_fields_get_errors_next_to_each_field(client):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert response.status_code == 422
    assert re.search(r'id="email-error">Enter your email address\.', response.text)
    assert re.search(r'id="password-error">Enter your password\.', response.text)
    assert "Invalid email or password" not in response.text


def test_deactivated_user_cannot_log_in(app, client, factory):
    user = factory.user("reviewer")
    with app.app_context():
        session = db_session()
        session.merge(user).is_active = False
        session.commit()
    assert login(client, user.email).status_code == 422


def test_login_follows_a_relative_next_path(client, factory):
    user = factory.user("reviewer")
    queue = factory.queue("support")
    redirect = client.get(f"/queues/{queue.slug}/review")
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith("/login?next=")
    page = client.get(redirect.headers["Location"])
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    next_value = re.search(r'name="next" type="hidden" value="([^"]*)"', page.text).group(1)
    assert next_value == "/queues/support/review"
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": "password123",
            "csrf_token": token,
            "next": next_value,
        },
    )
    assert response.headers["Location"] == "/queues/support/review"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_ignores_an_off_site_next(client, factory, target):
    user = factory.user("reviewer")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"email": user.email, "password": "password123", "csrf_token": token, "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logged_in_user_visiting_login_goes_home(client, factory):
    login(client, factory.user("ml").email)
    assert client.get("/login").headers["Location"] == "/ml/"


def test_logout_needs_post_and_csrf(client, factory):
    login(client, factory.user("reviewer").email)
    token = csrf_from(client.get("/").text)

    assert client.get("/logout").status_code == 405
    rejected = client.post("/logout")
    assert rejected.status_code == 400
    assert client.get("/").status_code == 200  # still logged in

    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/").headers["Location"].startswith("/login")


def test_anonymous_visitors_are_sent_to_login(client, factory):
    queue = factory.queue()
    for path in (
        "/",
        f"/queues/{queue.slug}/review",
        "/ml/",
        f"/ml/queues/{queue.slug}/export.jsonl",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_ml_user_cannot_open_the_review_page(client, factory):
    queue = factory.queue()
    login(client, factory.user("ml").email)
    response = client.get(f"/queues/{queue.slug}/review")
    assert response.status_code == 403
    assert "You do not have permission" in response.text
    assert "<html" in response.text  # a real page with the layout, not a bare error
    assert client.get("/").headers["Location"] == "/ml/"


def test_reviewer_cannot_open_the_ml_page(client, factory):
    queue = factory.queue()
    login(client, factory.user("reviewer").email)
    assert client.get("/ml/").status_code == 403
    assert client.get(f"/ml/queues/{queue.slug}/export.jsonl").status_code == 403


def test_policy_owner_sees_the_queue_list_but_cannot_review(client, factory):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    factory.member(queue, owner)
    login(client, owner.email)
    page = client.get("/")
    assert page.status_code == 200
    assert queue.name in page.text
    assert "Start reviewing" not in page.text
    assert client.get(f"/queues/{queue.slug}/review").status_code == 403


def test_admin_passes_every_role_check(client, factory):
    queue = factory.queue()
    login(client, factory.user("admin").email)
    assert client.get("/").status_code == 200
    assert client.get(f"/queues/{queue.slug}/review").status_code == 200
    assert client.get("/ml/").status_code == 200


def test_unknown_pages_get_a_readable_404(client, factory):
    login(client, factory.user("reviewer").email)
    response = client.get("/queues/no-such-queue/review")
    assert response.status_code == 404
    assert "There is no page at this address." in response.text
    assert "<html" in response.text
