"""Admin queue pages: create and edit with errors next to fields, members, retiring labels."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import AuditEvent
from review.db import db_session
from review.services import members, queues
from tests.conftest import csrf_from, login
from tests.web.ui_helpers import add_items

FORM = {
    "name": "Refund requests",
    "slug": "refunds",
    "labels": "approve_refund\r\ndeny_refund\r\nescalate",
    "reason_codes": "wrong_label\nmissing_context",
    "instructions": "Approve refunds within policy.\r\n\r\nEscalate anything over $500.",
    "recommender_kind": "none",
    "recommender_model": "",
    "display_fields": "amount, reason",
    "escalation_queue": "",
}


def error_for(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_only_admins_reach_the_admin_pages(client, factory):
    assert client.get("/admin/").status_code == 302  # to the login page
    login(client, factory.user("policy_owner").email)
    for url in ("/admin/", "/admin/queues/new", "/admin/people/"):
        assert client.get(url).status_code == 403
    token = csrf_from(client.get("/").text)
    assert client.post("/admin/queues/new", data={**FORM, "csrf_token": token}).status_code == 403


def test_admin_creates_a_queue_with_members(app, client, factory, csrf):
    reviewer = factory.user("reviewer", email="rev@example.com")
    factory.queue("senior")
    page = client.get("/admin/queues/new")
    assert "rev@example.com" in page.text
    response = client.post(
        "/admin/queues/new",
        data={
            **FORM,
            "escalation_queue": "senior",
            "members": [str(reviewer.id)],
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/queues/refunds/edit")
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "refunds")
        assert queue.labels == ["approve_refund", "deny_refund", "escalate"]
        assert (
            queue.instructions == "Approve refunds within policy.\n\nEscalate anything over $500."
        )
        assert queue.display_fields == ["amount", "reason"]
        assert queue.recommender_kind == "none"
        assert queue.escalation_queue_id == queues.get_queue(session, "senior").id
        assert members.member_ids(session, queue) == {reviewer.id}
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"queue.created", "queue.configured", "queue.members_changed"} <= actions
    # The reviewer now sees the queue in their list.
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "rev@example.com")
    assert "Refund requests" in client.get("/").text


def test_errors_are_shown_next_to_their_fields_and_nothing_is_saved(app, client, admin, csrf):
    bad = {
        **FORM,
        "slug": "Bad Slug",
        "labels": "only-one",
        "name": "",
        "recommender_kind": "oracle",
        "csrf_token": csrf,
    }
    response = client.post("/admin/queues/new", data=bad)
    assert response.status_code == 422
    html = response.text
    assert error_for(html, "slug") == "must be 1-64 lowercase letters, digits or dashes"
    assert error_for(html, "labels") == "must have at least 2 entries"
    assert "non-empty" in error_for(html, "name")
    assert "must be one of" in error_for(html, "recommender-kind")
    assert 'id="labels" name="labels" rows="5" aria-invalid="true"' in html
    assert "only-one</textarea>" in html  # what was typed is kept
    with app.app_context():
        assert queues.list_queues(db_session()) == []


def test_a_used_label_is_retired_only_when_confirmed(app, client, admin, csrf, factory):
    factory.queue("support")  # labels approve, reject, escalate
    add_items(app, "support", 2, label="escalate")
    form = {
        "name": "Support",
        "labels": "approve\nreject\nescalate_now",
        "reason_codes": "wrong_label",
        "recommender_kind": "local",
        "csrf_token": csrf,
    }
    page = client.get("/admin/queues/support/edit")
    assert "Retire “escalate” if I take it out (2 items)" in page.text

    refused = client.post("/admin/queues/support/edit", data=form)
    assert refused.status_code == 422
    assert "“escalate” (2 items) in use: retire it" in error_for(refused.text, "labels")
    with app.app_context():
        assert queues.get_queue(db_session(), "support").labels == ["approve", "reject", "escalate"]

    saved = client.post("/admin/queues/support/edit", data={**form, "retire": "escalate"})
    assert saved.status_code == 303
    with app.app_context():
        queue = queues.get_queue(db_session(), "support")
        assert (queue.labels, queue.retired_labels) == (
            ["approve", "reject", "escalate_now"],
            ["escalate"],
        )
    assert "Retired: escalate" in client.get("/admin/queues/support/edit").text


def test_live_preview_shows_instructions_labels_and_a_sample_item(
    app, client, admin, csrf, factory
):
    factory.queue("support")
    add_items(app, "support", 1, payload={"body": "Hello there", "amount": 12})
    response = client.post(
        "/admin/queues/preview",
        data={
            "queue_slug": "support",
            "instructions": "First <b>para</b>.\n\nSecond.",
            "labels": "yes\nno",
            "display_fields": "amount",
            "csrf_token": csrf,
        },
        headers={"HX-Request": "true", "X-CSRFToken": csrf},
    )
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<section id="reviewer-preview"')
    assert "<p>First &lt;b&gt;para&lt;/b&gt;.</p><p>Second.</p>" in html
    assert "<kbd>1</kbd> yes" in html and "<kbd>2</kbd> no" in html
    assert "Hello there" in html
    no_csrf = client.post(
        "/admin/queues/preview", data={"instructions": "x"}, headers={"HX-Request": "true"}
    )
    assert no_csrf.status_code == 400
