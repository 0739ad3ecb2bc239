"""The reviewer's pages: queue list, review screen, decisions through htmx and without JS."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from models import Item, Review
from review.db import db_session
from tests.conftest import csrf_from, login
from tests.web.ui_helpers import add_items, cut_redis, htmx_headers, reviewer_in, shown_item


def count_of(html: str, slug: str, name: str) -> int:
    row = re.search(rf'<tr data-queue="{slug}">(.*?)</tr>', html, re.S).group(1)
    return int(re.search(rf'data-count="{name}">(\d+)<', row).group(1))


def reviews(app) -> list[Review]:
    with app.app_context():
        session = db_session()
        rows = list(session.scalars(select(Review).order_by(Review.id)))
        session.expunge_all()
        return rows


def item_status(app, item_id: int) -> str:
    with app.app_context():
        return db_session().get(Item, item_id).status


def open_review(client, slug: str):
    page = client.get(f"/queues/{slug}/review")
    assert page.status_code == 200
    return page, csrf_from(page.text)


def decide(client, slug: str, item_id: int, token: str, **form):
    return client.post(
        f"/queues/{slug}/items/{item_id}/decision", data=form, headers=htmx_headers(token)
    )


def test_queue_list_shows_counts_and_start_links(app, client, factory):
    support = factory.queue("support", name="Support tickets")
    refunds = factory.queue("refunds", name="Refund requests")
    factory.queue("unassigned", name="Not assigned")
    add_items(app, "support", 3)
    add_items(app, "support", 2, prefix="raw", with_recommendation=False)  # waits for the AI
    login(client, reviewer_in(factory, support, refunds).email)
    page, token = open_review(client, "support")
    item_id, _ = shown_item(page.text)
    decide(client, "support", item_id, token, action="approve")

    html = client.get("/").text
    assert count_of(html, "support", "needs_review") == 2
    assert count_of(html, "support", "pending") == 2
    assert count_of(html, "support", "decided_today") == 1
    assert count_of(html, "refunds", "needs_review") == 0
    assert 'href="/queues/support/review"' in html
    assert 'href="/queues/refunds/review"' in html
    assert (
        "unassigned" not in html and "Not assigned" not in html
    )  # a queue the reviewer is not assigned to is not listed


def test_review_page_shows_payload_instructions_and_recommendation(app, client, factory):
    support = factory.queue(
        "support", instructions="Close solved tickets.\n\nEscalate legal threats."
    )
    add_items(
        app,
        "support",
        1,
        confidence=0.734,
        payload={
            "subject": "Refund",
            "body": "Line one of a long message " * 5,
            "amount": 12.5,
            "customer": {"tier": "gold", "orders": [3, 4]},
        },
    )
    login(client, reviewer_in(factory, support).email)
    html = client.get("/queues/support/review").text
    assert "Close solved tickets." in html and "Escalate legal threats." in html
    assert '<p class="payload-paragraph">Line one of a long message' in html
    assert '<dt>amount</dt><dd><code class="payload-scalar">12.5</code>' in html
    assert re.search(r"<dt>tier</dt>\s*<dd><span class=\"payload-text\">gold</span>", html)
    assert '<span class="label-chip">approve</span>' in html
    assert "<strong>73%</strong>" in html
    assert 'value="0.734"' in html  # the confidence bar
    assert "The customer says the issue is solved." in html
    assert "model test-model · version 7" in html
    approve = re.search(r'<button[^>]*id="approve-button"[^>]*>', html, re.S).group(0)
    assert "disabled" not in approve
    # Each label under its digit key; the AI's own ("approve") says to approve it instead.
    assert '<label for="label-1"><kbd>1</kbd> approve <span class="muted small">' in html
    for number, label in enumerate(["reject", "escalate"], start=2):
        assert f'<label for="label-{number}"><kbd>{number}</kbd> {label}</label>' in html
    for code in ("wrong_label", "missing_context", "policy_exception"):
        assert f'<option value="{code}">' in html


def test_empty_payload_values_say_so(app, client, factory):
    support = factory.queue("support")
    add_items(
        app,
        "support",
        1,
        payload={
            "subject": "Card lost",
            "phone": None,
            "notes": "  ",
            "vip": False,
            "address": {"line2": None},
        },
    )
    login(client, reviewer_in(factory, support).email)
    html = client.get("/queues/support/review").text
    for key in ("phone", "notes", "line2"):
        assert re.search(
            rf'<dt>{key}</dt>\s*<dd><span class="payload-empty">\(no value\)</span>', html
        ), key
    assert ">null<" not in html
    assert '<dt>vip</dt><dd><code class="payload-scalar">false</code>' in html


def test_reload_resumes_the_same_item(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    login(client, reviewer_in(factory, support).email)
    first = client.get("/queues/support/review")
    assert shown_item(client.get("/queues/support/review").text) == shown_item(first.text)
    # Its leases end when the page is left: a browser must ask again, not show a copy.
    assert first.headers["Cache-Control"] == "no-store"


def test_item_without_recommendation_cannot_be_approved(app, client, factory):
    manual = factory.queue("manual", recommender={"kind": "none"})
    add_items(app, "manual", 1, with_recommendation=False)
    login(client, reviewer_in(factory, manual).email)
    page, token = open_review(client, "manual")
    assert "No AI recommendation" in page.text
    assert "the recommender had nothing to suggest" in page.text
    approve = re.search(r'<button[^>]*id="approve-button"[^>]*>', page.text, re.S).group(0)
    assert "disabled" in approve
    item_id, _ = shown_item(page.text)
    refused = decide(client, "manual", item_id, token, action="approve")
    assert refused.status_code == 422
    assert 'id="action-error"' in refused.text
    assert item_status(app, item_id) == "needs_review"


def test_two_reviewers_get_different_items(app, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    first, second = app.test_client(), app.test_client()
    login(first, reviewer_in(factory, support).email)
    login(second, reviewer_in(factory, support).email)
    first_item = shown_item(first.get("/queues/support/review").text)
    second_item = shown_item(second.get("/queues/support/review").text)
    assert first_item and second_item
    assert first_item != second_item


def test_approve_returns_the_next_item_as_a_fragment(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    page, token = open_review(client, "support")
    item_id, external_id = shown_item(page.text)

    response = decide(client, "support", item_id, token, action="approve")
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="review-item"')
    assert "HX-Request" in response.headers["Vary"]
    next_item = shown_item(response.text)
    assert next_item is not None and next_item[0] != item_id
    assert f"Saved {external_id}: approved" in response.text
    [review] = reviews(app)
    assert (review.item_id, review.action, review.final_label) == (item_id, "approved", "approve")


def test_override_records_label_reason_and_comment(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support).email)
    page, token = open_review(client, "support")
    item_id, _ = shown_item(page.text)
    response = decide(
        client,
        "support",
        item_id,
        token,
        action="override",
        label="escalate",
        reason_code="missing_context",
        comment="Legal threat",
    )
    assert response.status_code == 200
    assert "Nothing to review right now" in response.text  # that was the last item
    [review] = reviews(app)
    assert review.action == "overridden"
    assert (review.ai_label, review.final_label) == ("approve", "escalate")
    assert (review.reason_code, review.comment) == ("missing_context", "Legal threat")


def test_override_without_reason_code_shows_the_error_and_changes_nothing(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    page, token = open_review(client, "support")
    item_id, _ = shown_item(page.text)

    response = decide(
        client, "support", item_id, token, action="override", label="reject", comment="kept"
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    assert shown_item(response.text)[0] == item_id  # the same item again
    # The dropdown lists the reasons in words; the error says what to do, not the raw codes.
    assert (
        '<p class="field-error" id="reason_code-error">Choose a reason code: an override needs one'
        in response.text
    )
    assert "is required, one of" not in response.text
    assert 'aria-invalid="true" aria-describedby="reason_code-error"' in response.text
    assert re.search(r'id="label-2" value="reject"\s*data-key="2"\s*checked', response.text)
    assert ">kept</textarea>" in response.text
    assert 'data-mode="override"' in response.text
    assert reviews(app) == []
    assert item_status(app, item_id) == "needs_review"


def test_deciding_twice_from_a_stale_tab_says_who_decided(app, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    first_user = reviewer_in(factory, support, email="first@example.com")
    tab_one, tab_two = app.test_client(), app.test_client()
    login(tab_one, first_user.email)
    login(tab_two, first_user.email)
    page, token = open_review(tab_one, "support")
    stale_page, stale_token = open_review(tab_two, "support")
    item_id, external_id = shown_item(page.text)
    assert shown_item(stale_page.text)[0] == item_id  # both tabs show the same leased item

    assert decide(tab_one, "support", item_id, token, action="approve").status_code == 200
    stale = decide(
        tab_two,
        "support",
        item_id,
        stale_token,
        action="override",
        label="reject",
        reason_code="wrong_label",
    )
    assert stale.status_code == 200
    assert (
        f"Item {external_id} was not saved: already decided by first@example.com at" in stale.text
    )
    assert shown_item(stale.text)[0] not in (item_id, None)  # the next item is shown
    [review] = reviews(app)
    assert review.action == "approved"


def test_decision_without_javascript_redirects_back(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    page, token = open_review(client, "support")
    item_id, external_id = shown_item(page.text)

    response = client.post(
        f"/queues/support/items/{item_id}/decision",
        data={"action": "approve", "csrf_token": token},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/queues/support/review"
    follow = client.get(response.headers["Location"])
    assert f"Saved {external_id}: approved" in follow.text
    assert shown_item(follow.text)[0] != item_id

    invalid = client.post(
        f"/queues/support/items/{shown_item(follow.text)[0]}/decision",
        data={"action": "override", "label": "reject", "csrf_token": token},
    )
    assert invalid.status_code == 422
    assert "<html" in invalid.text and 'id="reason_code-error"' in invalid.text


def test_empty_queue_polls_and_picks_up_a_new_item(app, client, factory):
    support = factory.queue("support")
    login(client, reviewer_in(factory, support).email)
    page = client.get("/queues/support/review")
    assert "Nothing to review right now" in page.text
    assert re.search(
        r'id="review-item"[^>]*hx-get="/queues/support/review"\s+hx-trigger="every 5s"',
        page.text,
        re.S,
    )

    poll_headers = {"HX-Request": "true", "HX-Target": "review-item"}
    still_empty = client.get("/queues/support/review", headers=poll_headers)
    assert "<html" not in still_empty.text and 'hx-trigger="every 5s"' in still_empty.text

    add_items(app, "support", 1, prefix="late")
    arrived = client.get("/queues/support/review", headers=poll_headers)
    assert "<html" not in arrived.text
    assert shown_item(arrived.text)[1] == "late-1"
    assert "every 5s" not in arrived.text  # polling stops once there is an item


def test_decision_on_an_item_of_another_queue_is_404(app, client, factory):
    support = factory.queue("support")
    factory.queue("refunds")
    add_items(app, "refunds", 1)
    login(client, reviewer_in(factory, support).email)
    _, token = open_review(client, "support")
    with app.app_context():
        other_id = db_session().scalar(select(func.min(Item.id)))
    assert decide(client, "support", other_id, token, action="approve").status_code == 404
    assert item_status(app, other_id) == "needs_review"


def test_hostile_payloads_render_escaped_and_can_still_be_decided(app, client, factory):
    support = factory.queue("support")
    deep: object = "bottom-of-the-well"
    for _ in range(50):
        deep = {"level": deep}
    payload = {
        "<script>alert(1)</script>": "<script>alert(2)</script>",
        "note": "<img src=x onerror=alert(3)>",
        "huge": "x" * 100_000,
        "deep": deep,
        "list": ["<b>bold</b>", {"<i>": None}],
    }
    add_items(app, "support", 2, payload=payload)
    login(client, reviewer_in(factory, support).email)
    page, token = open_review(client, "support")
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the key
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html  # the value
    assert "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "x" * 100_000 in html
    assert "bottom-of-the-well" in html  # drawn as JSON text below the nesting limit
    item_id, _ = shown_item(html)
    response = decide(client, "support", item_id, token, action="approve")
    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert len(reviews(app)) == 1


def test_the_queue_is_searched_by_the_words_of_its_items(app, client, factory, monkeypatch):
    support = factory.queue("support")
    add_items(app, "support", 3, payload={"text": "Printer jams on page two"}, prefix="jam")
    add_items(app, "support", 2, payload={"text": "Invoice shows the wrong VAT"}, prefix="vat")
    login(client, reviewer_in(factory, support).email)
    monkeypatch.setattr("review.services.queue_views.PAGE_SIZE", 2)

    found = client.get("/queues/support?q=printer+jams")
    assert found.status_code == 200
    assert 'name="q" value="printer jams"' in found.text
    assert ">jam-1</a>" in found.text and ">jam-2</a>" in found.text
    assert ">vat-1</a>" not in found.text
    # The next page keeps the search.
    next_page = re.search(r'rel="next" href="([^"]+)"', found.text).group(1)
    assert "q=printer+jams" in next_page.replace("&amp;", "&")
    rest = client.get(next_page.replace("&amp;", "&")).text
    assert ">jam-3</a>" in rest and ">vat-1</a>" not in rest
    counts = client.get("/queues/support/counts?q=printer+jams").text
    assert 'data-count="matching">3<' in counts
    assert ">vat-2</a>" in client.get("/queues/support?q=VAT").text

    # Nothing to look for: the error next to the field, and the unfiltered list.
    empty = client.get("/queues/support?q=%3C%3E%21")
    assert empty.status_code == 400
    assert '<p class="field-error" id="f-search-error">type a word or a number</p>' in empty.text
    hostile = client.get("/queues/support?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert hostile.status_code == 200 and "<script>alert(1)" not in hostile.text
    assert "No items match these filters." in hostile.text


def test_a_bad_choice_is_left_out_and_the_others_kept(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2, payload={"text": "Printer jams"}, prefix="jam")
    add_items(app, "support", 2, payload={"text": "Printer jams"}, prefix="rej", label="reject")
    login(client, reviewer_in(factory, support).email)

    page = client.get("/queues/support?label=reject&q=%21%21&band=huge")
    assert page.status_code == 400
    assert "The choices marked below were not understood and were left out" in page.text
    # The label still applies; the search box keeps what was typed, to be fixed.
    assert ">rej-1</a>" in page.text and ">jam-1</a>" not in page.text
    assert '<option value="reject" selected>reject</option>' in page.text
    assert 'name="q" value="!!"' in page.text
    assert "type a word or a number" in page.text
    # A page link gone stale starts the list again, under the same filters.
    stale = client.get("/queues/support?label=reject&after=nonsense")
    assert "That page link is out of date" in stale.text and ">rej-1</a>" in stale.text


def test_decided_only_choices_on_waiting_items_are_named_as_left_out(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    reviewer = reviewer_in(factory, support)
    login(client, reviewer.email)
    args = f"final_label=reject&outcome=overridden&decided_by={reviewer.id}"
    waiting = client.get(f"/queues/support?{args}").text
    assert (
        "Final label, Outcome, Decided by: apply only to decided items, so they were left out"
        in waiting
    )
    assert ">item-1</a>" in waiting
    auto = client.get(f"/queues/support?status=auto_approved&{args}").text
    assert "Outcome, Decided by: apply only to items decided by a person" in auto
    assert "left out" not in client.get("/queues/support?status=decided&" + args).text


def test_search_and_decided_filters_need_only_the_database(app, client, factory):
    """With Redis out of reach, the queue page still searches, filters and counts."""
    support = factory.queue("support")
    add_items(app, "support", 2, payload={"text": "Printer jams"}, prefix="jam")
    reviewer = reviewer_in(factory, support)
    login(client, reviewer.email)
    cut_redis(app)
    found = client.get("/queues/support?q=printer")
    assert found.status_code == 200 and ">jam-2</a>" in found.text
    counts = client.get("/queues/support/counts?q=printer")
    assert 'data-count="matching">2<' in counts.text
    decided = client.get(f"/queues/support?status=decided&decided_by={reviewer.id}")
    assert decided.status_code == 200 and "No items match these filters." in decided.text
