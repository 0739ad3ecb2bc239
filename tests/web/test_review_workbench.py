"""The reviewer's workbench over HTTP: membership, skip, escalate, undo, idempotent submits,
lease heartbeats, the queue page, the what-is-down banner and evidence highlighting."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, update

from models import Item, Queue, Review
from models.base import utcnow
from review.db import db_session
from review.web.queue.highlight import highlight
from tests.conftest import csrf_from, login
from tests.web.ui_helpers import (
    add_items,
    cut_redis,
    htmx_headers,
    idempotency_key,
    reviewer_in,
    shown_item,
)


def open_review(client, slug):
    page = client.get(f"/queues/{slug}/review")
    assert page.status_code == 200
    return page.text, csrf_from(page.text)


def post(client, url, token, **form):
    return client.post(url, data=form, headers=htmx_headers(token))


def review_count(app) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count()).select_from(Review))


def test_a_reviewer_outside_the_queue_gets_404_everywhere(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    insider, outsider = app.test_client(), client
    login(insider, reviewer_in(factory, support).email)
    html, _ = open_review(insider, "support")
    item_id, _ = shown_item(html)
    login(outsider, factory.user("reviewer").email)
    token = csrf_from(outsider.get("/").text)
    for url in ("/queues/support/review", "/queues/support", "/queues/support/counts"):
        assert outsider.get(url).status_code == 404, url
    for action in ("decision", "skip", "undo", "heartbeat", "release"):
        url = f"/queues/support/items/{item_id}/{action}"
        assert post(outsider, url, token, action="approve").status_code == 404, url
    assert "support" not in outsider.get("/").text
    assert review_count(app) == 0


def test_admins_see_every_queue(app, client, factory):
    factory.queue("support", name="Support tickets")
    login(client, factory.user("admin").email)
    assert "Support tickets" in client.get("/").text
    assert client.get("/queues/support").status_code == 200


def test_skip_needs_a_reason_then_shows_the_next_item(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, external_id = shown_item(html)
    url = f"/queues/support/items/{item_id}/skip"

    refused = post(client, url, token, skip_reason="")
    assert refused.status_code == 422
    assert 'id="skip_reason-error">Choose why you are skipping<' in refused.text
    assert "needs_expertise" not in refused.text.split('id="skip_reason-error"')[1][:200]
    assert re.search(r'id="skip-panel" class="side-action" open', refused.text)
    assert shown_item(refused.text)[0] == item_id

    skipped = post(client, url, token, skip_reason="needs_expertise", skip_comment="tax law")
    assert skipped.status_code == 200
    assert f"Skipped {external_id}" in skipped.text
    assert shown_item(skipped.text)[0] != item_id
    with app.app_context():
        assert db_session().get(Item, item_id).leased_by_id is None


def test_escalate_is_offered_only_with_a_target_and_moves_the_item(app, client, factory):
    senior = factory.queue("senior", name="Senior desk")
    support = factory.queue("support")
    add_items(app, "support", 1)
    user = reviewer_in(factory, support, senior)
    login(client, user.email)
    html, token = open_review(client, "support")
    assert 'id="escalate-panel"' not in html
    with app.app_context():
        session = db_session()
        session.get(Queue, support.id).escalation_queue_id = senior.id
        session.commit()
    html, token = open_review(client, "support")
    assert "Escalate to Senior desk" in html
    item_id, external_id = shown_item(html)
    response = post(
        client, f"/queues/support/items/{item_id}/escalate", token, escalate_comment="lawyer"
    )
    assert f"Escalated {external_id} to Senior desk." in response.text
    senior_page, _ = open_review(client, "senior")
    assert shown_item(senior_page)[0] == item_id
    assert "escalated from support to senior: “lawyer”" in senior_page


def test_undo_after_a_decision_brings_the_item_back(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, external_id = shown_item(html)
    decided = post(client, f"/queues/support/items/{item_id}/decision", token, action="approve")
    assert f"Undo {external_id}" in decided.text
    undo_url = f"/queues/support/items/{item_id}/undo"
    assert f'hx-post="{undo_url}"' in decided.text

    undone = post(client, undo_url, token)
    assert undone.status_code == 200
    assert f"Undone: {external_id} is back with you." in undone.text
    assert shown_item(undone.text)[0] == item_id
    assert review_count(app) == 0
    assert "undid the decision “approve”" in undone.text  # in the item's history

    again = post(client, undo_url, token)
    assert "there is no decision on this item to undo" in again.text


def test_an_undone_override_comes_back_with_its_label_reason_and_comment(app, client, factory):
    # An undo is mostly for a slip: the form comes back as it was sent, to change one field.
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, _ = shown_item(html)
    post(
        client,
        f"/queues/support/items/{item_id}/decision",
        token,
        action="override",
        label="reject",
        reason_code="missing_context",
        comment="Customer <b>already</b> refunded",
    )
    undone = post(client, f"/queues/support/items/{item_id}/undo", token).text
    assert shown_item(undone)[0] == item_id
    assert 'data-mode="override"' in undone
    assert re.search(r'value="reject"\s+data-key="2"\s+checked', undone)
    assert '<option value="missing_context" selected>' in undone
    assert ">Customer &lt;b&gt;already&lt;/b&gt; refunded</textarea>" in undone

    # An undone approval comes back as a blank approval, as before.
    approved = post(client, f"/queues/support/items/{item_id}/decision", token, action="approve")
    assert "Saved" in approved.text
    again = post(client, f"/queues/support/items/{item_id}/undo", token).text
    assert 'data-mode="approve"' in again and " selected>" not in again
    assert not re.search(r"\schecked", again)


def test_a_double_submit_is_refused_with_who_and_when(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    user = reviewer_in(factory, support, email="dbl@example.com")
    login(client, user.email)
    html, token = open_review(client, "support")
    item_id, external_id = shown_item(html)
    key = idempotency_key(html)
    url = f"/queues/support/items/{item_id}/decision"
    first = post(client, url, token, action="approve", idempotency_key=key)
    second = post(client, url, token, action="approve", idempotency_key=key)
    assert f"Saved {external_id}" in first.text
    assert f"Item {external_id} was not saved: already decided by dbl@example.com at" in (
        second.text
    )
    assert review_count(app) == 1


def test_heartbeat_and_release(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, _ = shown_item(html)
    assert 'data-heartbeat-seconds="100"' in html  # a third of the 300-second lease
    beat = post(client, f"/queues/support/items/{item_id}/heartbeat", token)
    assert beat.status_code == 204
    release = client.post(
        f"/queues/support/items/{item_id}/release",
        data={"csrf_token": token, "page": page_id(html)},
    )  # what sendBeacon sends: a form with the token and the page's id, no header
    assert release.status_code == 204
    lost = post(client, f"/queues/support/items/{item_id}/heartbeat", token)
    assert lost.status_code == 409 and lost.json["error"]["code"] == "lease_lost"


def page_id(html: str) -> str:
    return re.search(r'data-review-page="([0-9a-f]{16})"', html).group(1)


def test_a_reload_keeps_the_items_when_the_old_pages_release_arrives_late(app, client, factory):
    # A reload: the new page's request is answered before the old page's releases (sent as
    # it was hidden) arrive. They must not take the items the new page now shows.
    support = factory.queue("support")
    add_items(app, "support", 4)
    login(client, reviewer_in(factory, support).email)
    old_html, _ = open_review(client, "support")
    old_items = [int(i) for i in re.findall(r'data-item-id="(\d+)"', old_html)]
    assert len(set(old_items)) == 2  # the one shown and the one prefetched
    new_html, token = open_review(client, "support")
    assert page_id(new_html) != page_id(old_html)
    assert shown_item(new_html) == shown_item(old_html)  # the reload resumes the lease
    for item_id in set(old_items):
        late = client.post(
            f"/queues/support/items/{item_id}/release",
            data={"csrf_token": token, "page": page_id(old_html)},
        )
        assert late.status_code == 409  # not this page's to give back any more
    item_id, external_id = shown_item(new_html)
    key = idempotency_key(new_html)
    saved = post(
        client,
        f"/queues/support/items/{item_id}/decision",
        token,
        action="approve",
        idempotency_key=key,
    )
    assert f"Saved {external_id}" in saved.text
    # The prefetched item is still this reviewer's: the answer shows it next.
    assert shown_item(saved.text)[0] in old_items

    # The new page's own release (it is closed) still gives its items back, and a release
    # naming no page, or an id this server never gave, only frees leases no page claimed.
    shown_now, _ = shown_item(saved.text)
    for page in (None, "not-a-page-id", "' OR 1=1 --", "f" * 100_000):
        data = {"csrf_token": token} | ({"page": page} if page else {})
        refused = client.post(f"/queues/support/items/{shown_now}/release", data=data)
        assert refused.status_code == 409
    released = client.post(
        f"/queues/support/items/{shown_now}/release",
        data={"csrf_token": token, "page": page_id(new_html)},
    )
    assert released.status_code == 204


def test_queue_page_filters_pages_and_escapes(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3, payload={"text": "<script>alert(1)</script> refund"})
    add_items(app, "support", 1, prefix="raw", with_recommendation=False)
    login(client, reviewer_in(factory, support, email="lee@example.com").email)
    client.get("/queues/support/review")  # lease one item, and prefetch the next
    page = client.get("/queues/support")
    assert page.status_code == 200
    # Who holds which item: the one on lee's screen, and the one lined up to follow it.
    assert page.text.count("<td>lee@example.com</td>") == 1
    assert page.text.count('<span class="muted">next for lee@example.com</span>') == 1
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert page.text.count('<tr data-item-id="') == 3

    waiting = client.get("/queues/support?status=pending&no_rec=1")
    assert waiting.text.count('<tr data-item-id="') == 1
    assert "No AI recommendation" in waiting.text

    bad = client.get("/queues/support?sort=sideways&min_priority=x")
    assert bad.status_code == 400
    assert "must be a whole number" in bad.text and "must be one of" in bad.text

    counts = client.get("/queues/support/counts?label=approve")
    assert re.search(r'data-count="needs_review">3<', counts.text)
    assert re.search(r'data-count="in_review">2<', counts.text)
    assert re.search(r'data-count="pending">1<', counts.text)
    assert re.search(r'data-count="matching">3<', counts.text)
    assert 'hx-trigger="every 10s"' in counts.text


def test_keyset_pages_link_onwards(app, client, factory, monkeypatch):
    support = factory.queue("support")
    add_items(app, "support", 5)
    login(client, reviewer_in(factory, support).email)
    monkeypatch.setattr("review.services.queue_views.PAGE_SIZE", 2)
    seen = []
    url = "/queues/support"
    while url:
        html = client.get(url).text
        seen += re.findall(r'<tr data-item-id="(\d+)">', html)
        link = re.search(r'rel="next" href="([^"]+)">([^<]*)<', html)
        url = link.group(1).replace("&amp;", "&") if link else None
        if link:
            # Not "Next 2 items": the last page may hold fewer, and the link cannot know.
            assert link.group(2) == "Next page"
    assert len(seen) == 5 == len(set(seen))


def test_banner_says_the_worker_is_down_and_the_ai_is_down(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2, with_recommendation=False)
    with app.app_context():
        session = db_session()
        session.execute(update(Item).values(ai_status="unavailable", routed_at=utcnow()))
        session.commit()
    login(client, reviewer_in(factory, support).email)
    banner = client.get("/queues/support/system-status")
    assert banner.status_code == 200
    assert "The background worker is not running" in banner.text
    assert "The AI is unavailable: 2 of the last 2 items" in banner.text


def test_a_redis_outage_does_not_break_the_review_page(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    cut_redis(app)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    banner = client.get("/queues/support/system-status")
    assert banner.status_code == 200
    assert "The job queue (Redis) cannot be reached" in banner.text
    item_id, _ = shown_item(html)
    decided = post(client, f"/queues/support/items/{item_id}/decision", token, action="approve")
    assert decided.status_code == 200 and review_count(app) == 1


def test_evidence_quotes_are_marked_in_the_text_and_escaped(app, client, factory, monkeypatch):
    support = factory.queue("support")
    add_items(
        app,
        "support",
        1,
        payload={"body": "I was charged twice <b>today</b>.\n\nPlease refund the second charge."},
    )
    monkeypatch.setattr(
        "review.web.queue.rendering.evidence_of",
        lambda rec: ["charged twice", "refund the second", "never said this"],
    )
    login(client, reviewer_in(factory, support).email)
    html, _ = open_review(client, "support")
    assert '<mark class="evidence">charged twice</mark> &lt;b&gt;today&lt;/b&gt;.' in html
    assert '<mark class="evidence">refund the second</mark>' in html
    assert 'never said this <span class="muted small">(not found in the text)</span>' in html


def test_highlight_escapes_everything_but_its_own_marks():
    marked = str(highlight("a <i>x</i> CHARGED  twice", ["charged twice", "<i>"]))
    assert marked == (
        'a <mark class="evidence">&lt;i&gt;</mark>x&lt;/i&gt; '
        '<mark class="evidence">CHARGED  twice</mark>'
    )
    assert str(highlight("<b>", None)) == "&lt;b&gt;"


@pytest.mark.parametrize("length, collapsed", [(200, False), (5000, True)])
def test_long_text_starts_collapsed(app, client, factory, length, collapsed):
    support = factory.queue("support")
    add_items(app, "support", 1, payload={"body": "word " * (length // 5)})
    login(client, reviewer_in(factory, support).email)
    html, _ = open_review(client, "support")
    assert ('<details class="long-text">' in html) is collapsed


def test_my_numbers_on_the_queue_list(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, _ = shown_item(html)
    post(
        client,
        f"/queues/support/items/{item_id}/decision",
        token,
        action="override",
        label="reject",
        reason_code="wrong_label",
    )
    home = client.get("/").text
    assert re.search(r'data-stat="decisions_today">1<', home)
    assert re.search(r'data-stat="agreement">0%', home)


def test_the_queues_display_fields_lead_the_payload_in_their_order(app, client, factory):
    support = factory.queue("support")
    with app.app_context():
        session = db_session()
        session.get(Queue, support.id).display_fields = ["amount", "history", "missing", "body"]
        session.commit()
    body = "The parcel arrived broken.\n\nI would like my money back, please."
    add_items(
        app,
        "support",
        1,
        payload={"body": body, "channel": "email", "history": [1, 2], "amount": 42.5},
    )
    login(client, reviewer_in(factory, support).email)
    html, _ = open_review(client, "support")
    leading = html[html.index('<div class="payload-leading">') :]
    keys = re.findall(r'<h3 class="payload-key">(\w+)</h3>|<dt>(\w+)</dt>', leading)
    # amount, history, body as the admin set them (the absent field is ignored); then the rest.
    assert [a or b for a, b in keys] == ["amount", "history", "body", "channel"]
    assert "I would like my money back" in leading


PREFETCHED = re.compile(
    r'<template id="prefetched-item" data-item-id="(\d+)" data-external-id="([^"]*)"'
)


def test_the_next_item_is_prefetched_under_lease_and_comes_with_the_decision(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 4)
    user = reviewer_in(factory, support)
    login(client, user.email)
    html, token = open_review(client, "support")
    item_id, _ = shown_item(html)
    upcoming = PREFETCHED.search(html)
    assert upcoming and upcoming.group(2) == "item-2"
    next_id = int(upcoming.group(1))
    assert "Ticket item 2" in html[upcoming.start() :]
    with app.app_context():
        held = db_session().get(Item, next_id)
        # Leased to this reviewer, so nobody else gets it; its clock has not started.
        assert (held.leased_by_id, held.lease_started_at) == (user.id, None)

    other = app.test_client()
    login(other, reviewer_in(factory, support).email)
    assert shown_item(other.get("/queues/support/review").text)[1] == "item-3"

    answer = post(client, f"/queues/support/items/{item_id}/decision", token, action="approve")
    assert shown_item(answer.text) == (next_id, "item-2")
    with app.app_context():
        assert db_session().get(Item, next_id).lease_started_at is not None  # shown now
    # item-4 is the last free item: it is left for whoever has nothing, not prefetched.
    assert PREFETCHED.search(answer.text) is None


def test_overriding_to_the_ais_own_label_is_refused_next_to_the_label(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2, label="approve")
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    item_id, _ = shown_item(html)
    # The form says which label is the AI's before anyone picks it.
    assert re.search(r"approve <span[^>]*>\(the AI's label: approve it instead\)</span>", html)
    assert "reject <span" not in html
    answer = post(
        client,
        f"/queues/support/items/{item_id}/decision",
        token,
        action="override",
        label="approve",
        reason_code="wrong_label",
    )
    assert answer.status_code == 422
    assert re.search(r'id="label-error">[^<]*approve instead', answer.text)
    assert shown_item(answer.text)[0] == item_id  # the same item, still open
    assert review_count(app) == 0
