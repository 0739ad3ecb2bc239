"""The admin audit page: chain status naming a tampered row, search filters with keyset
pages, streamed CSV/JSONL exports, an item's trail, and admins only."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from models import ApiToken, AuditEvent, Item, User
from models.base import utcnow
from models.webhook import WebhookEvent
from review.db import db_session
from review.services import audit, ingest, queues, reviewing
from tests.conftest import login
from workers.audit_jobs import seal_pending


def record(app, action: str, **kwargs) -> int:
    with app.app_context():
        session = db_session()
        event = audit.record(session, action, **kwargs)
        session.commit()
        return event.id


def seal(app) -> None:
    with app.app_context():
        seal_pending(app.extensions["db"])


def tamper(app, statement) -> None:
    with app.app_context():
        session = db_session()
        session.execute(statement)
        session.commit()


def event_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-event="(\d+)"', html)]


def add_item(app, slug: str, external_id: str, confidence: float = 0.4) -> int:
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        body = {
            "external_id": external_id,
            "payload": {"text": "Refund please"},
            "recommendation": {"label": "approve", "confidence": confidence, "model": "m-3"},
        }
        parsed, _ = ingest.parse_ingest_body(body, queue)
        item = ingest.ingest(session, queue, parsed)[0].item
        session.commit()
        return item.id


@pytest.mark.parametrize("role", ["reviewer", "policy_owner", "ml"])
def test_only_admins_see_the_audit_pages_and_exports(client, factory, role):
    user = factory.user(role)
    urls = ["/admin/audit/", "/admin/audit/status", "/admin/audit/export.csv"]
    urls += ["/admin/audit/export.jsonl", "/admin/audit/items/1"]
    for url in urls:
        assert client.get(url).status_code == 302, url  # to the login page
    login(client, user.email)
    for url in urls:
        assert client.get(url).status_code == 403, url


def test_audit_page_is_in_the_admin_navigation(client, admin):
    page = client.get("/admin/")
    assert 'href="/admin/audit/">Audit log</a>' in page.text
    assert 'aria-current="page">Audit log' in client.get("/admin/audit/").text


def test_status_shows_an_intact_chain_then_names_the_edited_row(app, client, admin):
    ids = [record(app, "test.web", n=n) for n in range(3)]
    seal(app)
    status = client.get(
        "/admin/audit/status", headers={"HX-Request": "true", "HX-Target": "chain-status"}
    )
    assert "Chain intact" in status.text
    assert "<html" not in status.text  # the block alone for htmx
    assert re.search(r"<dt>Events verified</dt><dd>\d+</dd>", status.text)
    tamper(
        app,
        update(AuditEvent).where(AuditEvent.id == ids[1]).values(actor="user:someone@example.com"),
    )
    status = client.get("/admin/audit/status")
    assert "Chain BROKEN" in status.text
    assert f"event {ids[1]} (seq " in status.text and "does not match its hash" in status.text
    assert f"Show event {ids[1]}" in status.text


def test_status_names_a_deleted_row(app, client, admin):
    ids = [record(app, "test.web", n=n) for n in range(3)]
    seal(app)
    tamper(app, delete(AuditEvent).where(AuditEvent.id == ids[1]))
    status = client.get("/admin/audit/status")
    assert "Chain BROKEN" in status.text
    assert f"is missing (after event {ids[0]}, before event {ids[2]}" in status.text


def test_search_filters_by_actor_action_queue_item_text_and_time(app, client, factory, admin):
    queue = factory.queue("refunds")
    item_id = add_item(app, "refunds", "TCK-7")
    other = factory.user("reviewer", email="carol@example.com")
    with app.app_context():
        session = db_session()
        carol = session.get(User, other.id)
        a = audit.record(
            session,
            "item.overridden",
            user=carol,
            queue_id=queue.id,
            item_id=item_id,
            comment="customer wants 50% back",
        )
        b = audit.record(session, "policy.created", user=carol, queue_id=queue.id, version=2)
        c = audit.record(session, "auth.login_failed", email="mallory@example.com")
        session.commit()
        a, b, c = a.id, b.id, c.id
    tamper(
        app,
        update(AuditEvent)
        .where(AuditEvent.id == c)
        .values(created_at=utcnow() - timedelta(days=2)),
    )

    def search(**args) -> list[int]:
        response = client.get("/admin/audit/", query_string=args)
        assert response.status_code == 200, response.text
        return event_ids(response.text)

    assert search(actor="CAROL@") == [b, a]
    assert search(action="item.") == [a]
    assert search(action="item.overridden", actor="carol") == [a]
    assert search(queue="refunds", action="policy") == [b]
    assert search(item="TCK-7") == [a]
    assert search(item=str(item_id)) == [a]
    assert search(text="50% back") == [a]
    assert search(text="mallory") == [c]
    assert search(text="%") == [a]  # a literal percent sign, not a wildcard
    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert c not in search(since=yesterday)
    assert search(until=yesterday) == [c]


def test_bad_filters_are_named_next_to_their_fields(client, admin):
    response = client.get("/admin/audit/", query_string={"since": "yesterday", "queue": "nope"})
    assert response.status_code == 422
    assert 'id="since-error">use a date and time like 2026-11-26T14:30 (UTC)' in response.text
    assert 'id="queue-error">no such queue' in response.text
    response = client.get(
        "/admin/audit/", query_string={"since": "2026-11-26T10:00", "until": "2026-11-26T09:00"}
    )
    assert 'id="until-error">must be after “from”' in response.text


def test_keyset_pages_walk_every_event_once_in_both_directions(app, client, admin):
    ids = [record(app, "test.page", n=n) for n in range(120)]
    seen: list[int] = []
    response = client.get("/admin/audit/", query_string={"action": "test.page"})
    pages = []
    while True:
        page_ids = event_ids(response.text)
        pages.append(page_ids)
        seen += page_ids
        older = re.search(r'href="(/admin/audit/\?[^"]*before=\d+[^"]*)"', response.text)
        if not older:
            break
        response = client.get(older.group(1).replace("&amp;", "&"))
    assert seen == sorted(ids, reverse=True)
    assert [len(p) for p in pages] == [50, 50, 20]
    newer = re.search(r'href="(/admin/audit/\?[^"]*after=\d+[^"]*)"', response.text)
    back = client.get(newer.group(1).replace("&amp;", "&"))
    assert event_ids(back.text) == pages[1]
    assert "action=test.page" in newer.group(1)


def test_the_search_form_swaps_only_its_block_for_htmx(app, client, admin):
    record(app, "test.htmx")
    response = client.get(
        "/admin/audit/?action=test.htmx",
        headers={"HX-Request": "true", "HX-Target": "audit-search"},
    )
    assert response.text.lstrip().startswith('<div id="audit-search">')
    assert len(event_ids(response.text)) == 1
    assert "HX-Target" in response.headers["Vary"]


def test_exports_stream_the_filtered_events_with_their_seals_and_are_audited(app, client, admin):
    ids = [record(app, "test.export", note=f"=cmd|{n}", n=n) for n in range(3)]
    record(app, "test.other")
    seal(app)
    response = client.get("/admin/audit/export.jsonl", query_string={"action": "test.export"})
    assert response.status_code == 200
    assert response.is_streamed
    assert 'filename="audit-events.jsonl"' in response.headers["Content-Disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["id"] for row in rows] == ids
    assert all(len(row["hash"]) == 64 and row["seq"] for row in rows)
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[0]["details"] == {"note": "=cmd|0", "n": 0}

    response = client.get("/admin/audit/export.csv", query_string={"action": "test.export"})
    assert response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(row["id"]) for row in table] == ids
    assert json.loads(table[0]["details"]) == {"n": 0, "note": "=cmd|0"}
    assert table[0]["hash"] == rows[0]["hash"]

    with app.app_context():
        exported = (
            db_session()
            .scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "audit.exported")
                .order_by(AuditEvent.id)
            )
            .all()
        )
        assert [(e.details["format"], e.details["filters"]["action"]) for e in exported] == [
            ("jsonl", "test.export"),
            ("csv", "test.export"),
        ]
        assert exported[0].actor == "user:admin@example.com"


def test_a_bad_export_filter_changes_nothing_and_names_the_field(app, client, admin):
    response = client.get("/admin/audit/export.csv", query_string={"until": "soon"})
    assert response.status_code == 422
    assert 'id="until-error"' in response.text
    with app.app_context():
        assert (
            db_session().scalar(select(AuditEvent.id).where(AuditEvent.action == "audit.exported"))
            is None
        )


def test_who_decided_an_item_under_which_policy_on_what_advice_and_was_it_sent(
    app, client, factory, admin
):
    """The issue's "done when": from the audit search to the item's full trail."""
    queue = factory.queue("loans")
    reviewer = factory.user("reviewer", email="dana@example.com")
    factory.member(queue, reviewer)
    item_id = add_item(app, "loans", "LOAN-42", confidence=0.55)
    with app.app_context():
        session = db_session()
        reviewing.decide(
            session,
            item_id,
            session.get(User, reviewer.id),
            {
                "action": "override",
                "label": "reject",
                "reason_code": "wrong_label",
                "comment": "income not verified",
            },
        )
        session.add(
            WebhookEvent(
                event_id="evt-loan-42",
                type="item.decided",
                queue_id=queue.id,
                item_id=item_id,
                facts={},
                status="delivered",
                attempts=2,
                next_attempt_at=utcnow(),
                last_status_code=200,
                delivered_at=utcnow(),
            )
        )
        session.commit()

    search = client.get("/admin/audit/", query_string={"item": "LOAN-42"})
    link = f'href="/admin/audit/items/{item_id}"'
    assert link in search.text
    page = client.get(f"/admin/audit/items/{item_id}")
    assert page.status_code == 200
    summary = page.text
    assert re.search(r'id="decided-by">dana@example.com at ', summary)
    assert (
        "overrode the AI: “reject” (reason wrong_label), comment “income not verified”" in summary
    )
    assert re.search(r'id="under-policy">version 1 \(active\): ', summary)
    assert 'id="ai-advice">“approve” at 55.0% from m-3' in summary
    assert re.search(
        r'id="downstream">item.decided delivered at .* after 2 attempts '
        r"\(last answer HTTP 200\)",
        summary,
    )
    assert "item.overridden" in summary and "user:dana@example.com" in summary
    assert client.get("/admin/audit/items/999999").status_code == 404


def test_an_auto_approved_item_names_the_policy_as_decider(app, client, factory, admin):
    factory.queue("auto")
    with app.app_context():
        session = db_session()
        queues.create_policy_version(
            session,
            queues.get_queue(session, "auto"),
            {"default_threshold": 0.9, "note": "trust confident advice"},
            session.get(User, admin.id),
        )
        session.commit()
    item_id = add_item(app, "auto", "A-1", confidence=0.99)
    with app.app_context():
        assert db_session().get(Item, item_id).status == "auto_approved"
    page = client.get(f"/admin/audit/items/{item_id}")
    assert 'id="decided-by">the policy (v2), automatically' in page.text
    assert "item.auto_approved" in page.text


def test_hostile_details_are_escaped(app, client, admin):
    record(app, "test.xss", comment='<script>alert(1)</script>"><img src=x>')
    page = client.get("/admin/audit/")
    assert "<script>alert(1)" not in page.text and "<img src=x>" not in page.text


def test_api_export_downloads_are_audited(app, client, factory):
    factory.queue("exported")
    ml = factory.user("ml", email="ml@example.com")
    headers = {"Authorization": f"Bearer {factory.token(ml)}"}
    response = client.get("/api/v1/queues/exported/export.jsonl?overrides_only=1", headers=headers)
    assert response.status_code == 200
    with app.app_context():
        event = (
            db_session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "export.downloaded"))
            .one()
        )
        token = db_session().scalars(select(ApiToken).where(ApiToken.user_id == ml.id)).one()
        # An API action names its token (tests/web/api/test_audit_tokens.py).
        assert event.actor == f"token:{token.prefix}:ml@example.com"
        assert event.details == {
            "overrides_only": True,
            "via": "api",
            "token_id": token.id,
            "token_prefix": token.prefix,
        }


def test_a_long_log_is_verified_by_a_worker_and_the_page_shows_its_report(app, client, admin, csrf):
    from workers.worker import create_worker

    app.config["AUDIT_INLINE_VERIFY_MAX"] = 3
    ids = [record(app, "test.long", n=n) for n in range(6)]
    seal(app)
    fragment = {"HX-Request": "true", "HX-Target": "chain-status"}
    status = client.get("/admin/audit/status", headers=fragment)
    assert "Chain not checked yet" in status.text
    assert re.search(r"Verify all \d+ events now", status.text)

    status = client.post("/admin/audit/verify", data={"csrf_token": csrf}, headers=fragment)
    assert re.search(r'id="verification-running">A full check of \d+ events is queued', status.text)
    assert 'hx-trigger="every 3s"' in status.text  # polls until the worker is done
    with app.app_context():
        create_worker(app, simple=True).work(burst=True)
    status = client.get("/admin/audit/status", headers=fragment)
    assert "Chain intact" in status.text and "Checked in the background" in status.text
    assert "every 3s" not in status.text

    tamper(app, update(AuditEvent).where(AuditEvent.id == ids[2]).values(details={"n": 9}))
    client.post("/admin/audit/verify", data={"csrf_token": csrf})
    with app.app_context():
        create_worker(app, simple=True).work(burst=True)
    status = client.get("/admin/audit/status")
    assert "Chain BROKEN" in status.text
    assert f"event {ids[2]} (seq " in status.text and "does not match its hash" in status.text


def test_verify_now_needs_a_csrf_token(client, admin):
    assert client.post("/admin/audit/verify").status_code == 400
