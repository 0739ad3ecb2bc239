"""API actions name their token in the audit log; browser actions name only the user.

A leaked token's doings must be told apart from its owner's (and from the owner's other
tokens), and an admin must be able to find them by the token's prefix."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import ApiToken, AuditEvent, Item, User
from review.db import db_session
from review.services import accounts, audit, audit_chain
from tests.conftest import login
from tests.web.api.helpers import ingest, put_policy, recommended
from tests.web.test_review_workbench import open_review, post
from tests.web.ui_helpers import add_items, shown_item
from workers.audit_jobs import seal_pending


def bearer(app, user) -> tuple[dict[str, str], ApiToken]:
    """A header for a fresh token of `user`, and the token's row."""
    with app.app_context():
        session = db_session()
        token, plaintext = accounts.create_token(session, session.get(User, user.id), name="ci")
        session.commit()
        session.expunge(token)
    return {"Authorization": f"Bearer {plaintext}"}, token


def events(in_db, action: str) -> list[AuditEvent]:
    def read(session):
        found = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
        return found

    return in_db(read)


def first_item(in_db) -> int:
    return in_db(lambda s: s.scalar(select(Item.id).order_by(Item.id).limit(1)))


def decide_over_api(client, item_id: int, headers: dict[str, str]):
    url = f"/api/v1/items/{item_id}/decision"
    return client.post(url, json={"action": "approve"}, headers=headers)


def reviewer_with_items(app, factory, count: int = 1):
    queue = factory.queue("support")
    rita = factory.user("reviewer", email="rita@example.com")
    factory.member(queue, rita)
    add_items(app, "support", count)
    return rita


def test_an_api_decision_names_the_token_that_made_it(app, client, factory, in_db):
    rita = reviewer_with_items(app, factory)
    headers, token = bearer(app, rita)
    _unused, other = bearer(app, rita)  # the same owner's other token did nothing

    assert decide_over_api(client, first_item(in_db), headers).status_code == 200

    (event,) = events(in_db, "item.approved")
    assert event.actor == f"token:{token.prefix}:rita@example.com"
    assert event.actor_user_id == rita.id
    assert event.details["token_id"] == token.id
    assert event.details["token_prefix"] == token.prefix
    assert other.prefix not in event.actor


def test_an_api_ingest_and_policy_change_are_audited_with_their_token(app, client, factory, in_db):
    queue = factory.queue("support")
    owner = factory.user("policy_owner", email="po@example.com")
    factory.member(queue, owner)
    headers, token = bearer(app, owner)
    body = {"items": [recommended("T-1", "approve", 0.4), recommended("T-2", "reject", 0.3)]}

    assert put_policy(client, headers, "support", 0.99, approve=0.9).status_code == 201
    assert ingest(client, headers, "support", body).status_code == 202
    assert ingest(client, headers, "support", body).status_code == 200  # nothing new: no event
    assert (
        ingest(client, headers, "support", recommended("T-3", "approve", 0.95)).status_code == 202
    )

    label = f"token:{token.prefix}:po@example.com"
    first, second = events(in_db, "items.ingested")
    assert first.actor == label and second.actor == label
    assert first.queue_id == queue.id
    assert first.details["count"] == 2 and len(first.details["item_ids"]) == 2
    assert first.details["token_id"] == token.id
    assert [e.actor for e in events(in_db, "policy.created")][-1] == label
    # The policy, not the token, approved T-3.
    (approved,) = events(in_db, "item.auto_approved")
    assert approved.actor == "system" and "token_id" not in approved.details


def test_a_browser_decision_names_the_user_only(app, client, factory, in_db):
    rita = reviewer_with_items(app, factory, count=2)
    headers, _token = bearer(app, rita)
    # The same client acts over the API first, so a token mark left behind would show.
    api_item = first_item(in_db)
    assert decide_over_api(client, api_item, headers).status_code == 200
    login(client, rita.email)
    html, csrf = open_review(client, "support")
    item_id, _ = shown_item(html)

    assert (
        post(
            client, f"/queues/support/items/{item_id}/decision", csrf, action="approve"
        ).status_code
        == 200
    )

    by_item = {e.item_id: e for e in events(in_db, "item.approved")}
    assert by_item[item_id].actor == "user:rita@example.com"
    assert "token_id" not in by_item[item_id].details
    assert by_item[api_item].actor.startswith("token:")


def test_the_audit_search_finds_a_token_by_prefix_and_the_chain_holds(app, client, factory, in_db):
    rita = reviewer_with_items(app, factory)
    leaked_headers, leaked = bearer(app, rita)
    assert decide_over_api(client, first_item(in_db), leaked_headers).status_code == 200
    with app.app_context():  # the owner's own doing, not the token's
        session = db_session()
        audit.record(session, "test.by_owner", user=session.get(User, rita.id))
        session.commit()
    login(client, factory.user("admin").email)

    found = client.get("/admin/audit/", query_string={"actor": leaked.prefix})

    assert found.status_code == 200
    shown = {int(n) for n in re.findall(r'<tr data-event="(\d+)"', found.text)}
    assert shown == {e.id for e in events(in_db, "item.approved")}
    with app.app_context():
        seal_pending(app.extensions["db"])
        report = audit_chain.verify(db_session())
    assert report.ok and report.unsealed == 0
