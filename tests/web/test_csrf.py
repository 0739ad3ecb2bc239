"""CSRF protection on the browser pages: htmx sends the token as a header, forms as a field."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

import models
from models import Item, Review
from review.db import db_session
from tests.conftest import csrf_from, login
from tests.web.test_access_matrix import RULES, route_keys, url_for_rule, world  # noqa: F401
from tests.web.ui_helpers import add_items, htmx_headers, reviewer_in, shown_item

# `world` (imported above) is the access matrix's fixture: a queue, an item, every role.


def decided_items(app) -> list[tuple[int, str]]:
    with app.app_context():
        session = db_session()
        reviewed = session.execute(select(Review.item_id, Review.action)).all()
        return [tuple(row) for row in reviewed]


def test_every_page_carries_the_token_for_htmx(client, factory):
    support = factory.queue("support")
    login(client, reviewer_in(factory, support).email)
    page = client.get("/queues/support/review").text
    token = csrf_from(page)
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))
    assert headers == {"X-CSRFToken": token}


def test_decision_without_the_csrf_header_is_rejected_and_changes_nothing(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support).email)
    page = client.get("/queues/support/review")
    item_id, _ = shown_item(page.text)
    url = f"/queues/support/items/{item_id}/decision"

    rejected = client.post(url, data={"action": "approve"}, headers=htmx_headers(None))
    assert rejected.status_code == 400
    assert "CSRF" in rejected.text
    forged = client.post(url, data={"action": "approve"}, headers=htmx_headers("not-the-token"))
    assert forged.status_code == 400
    assert decided_items(app) == []
    with app.app_context():
        assert db_session().get(Item, item_id).status == "needs_review"

    accepted = client.post(
        url, data={"action": "approve"}, headers=htmx_headers(csrf_from(page.text))
    )
    assert accepted.status_code == 200
    assert decided_items(app) == [(item_id, "approved")]


def test_a_token_from_another_session_is_rejected(app, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    victim, attacker = app.test_client(), app.test_client()
    login(victim, reviewer_in(factory, support).email)
    login(attacker, reviewer_in(factory, support).email)
    item_id, _ = shown_item(victim.get("/queues/support/review").text)
    attacker_token = csrf_from(attacker.get("/").text)
    response = victim.post(
        f"/queues/support/items/{item_id}/decision",
        data={"action": "approve"},
        headers=htmx_headers(attacker_token),
    )
    assert response.status_code == 400
    assert decided_items(app) == []


def test_login_form_needs_its_csrf_field(client, factory):
    user = factory.user("reviewer")
    response = client.post("/login", data={"email": user.email, "password": "password123"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # not logged in


# --- every form and htmx endpoint ---------------------------------------------------------

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _row_counts(app) -> dict[str, int]:
    with app.app_context():
        session = db_session()
        return {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in models.Base.metadata.sorted_tables
        }


def _browser_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every state-changing route outside the bearer-token API."""
    routes = []
    for key, rule in sorted(RULES.items()):
        method, path = key.split(" ", 1)
        if method in UNSAFE and rule.kind != "api" and not path.startswith("/api/"):
            if key in route_keys(app):
                routes.append((method, path))
    return routes


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["missing", "forged"])
def test_every_browser_form_and_htmx_request_needs_the_token(app, world, token):  # noqa: F811
    """Walks every non-API POST (the access matrix's table) as a logged-in admin, as a
    plain form post and as an htmx request: each is refused with 400 and writes nothing."""
    admin = next(p for p in world.principals if p.role == "admin")
    routes = _browser_routes(app)
    assert len(routes) > 30  # the walk really covers the app's forms
    before = _row_counts(app)
    wrong = []
    for method, path in routes:
        url = url_for_rule(path, world)
        for headers in ({}, {"HX-Request": "true"}):
            client = app.test_client()
            with client.session_transaction() as browser:
                browser["_user_id"] = str(admin.user_id)
                browser["_fresh"] = True
            data = {} if token is None else {"csrf_token": token}
            sent = dict(headers) if token is None else {**headers, "X-CSRFToken": token}
            response = client.open(url, method=method, data=data, headers=sent)
            if response.status_code != 400 or "CSRF" not in response.text:
                kind = "htmx" if headers else "form"
                wrong.append(f"{method} {path} ({kind}): {response.status_code}")
    assert not wrong, "accepted without a valid CSRF token:\n" + "\n".join(wrong)
    assert _row_counts(app) == before
