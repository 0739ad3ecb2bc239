"""The workbench in real headless Chromium: keyboard-only review with override, undo, skip
and escalate; two reviewers at once; leases kept by the heartbeat and returned when they
lapse or the page closes; the AI-down banner."""

from __future__ import annotations

import re

import pytest
from flask import request, request_finished
from sqlalchemy import select, update

from models import Item, ItemEvent, Queue, Review
from models.base import utcnow
from review.db import db_session
from tests.browser.test_review_keyboard import log_in, wait_for_item
from tests.web.ui_helpers import add_items

pytestmark = pytest.mark.browser


def shown(page) -> str | None:
    return page.eval_on_selector("#review-item", "e => e.dataset.externalId || null")


def reviewer(factory, *queues, email):
    user = factory.user("reviewer", email=email)
    for queue in queues:
        factory.member(queue, user)
    return user


def test_keyboard_only_override_undo_skip_and_escalate(app, factory, live_server, browser):
    senior = factory.queue("senior", name="Senior desk")
    support = factory.queue("support", name="Support tickets")
    with app.app_context():
        session = db_session()
        session.get(Queue, support.id).escalation_queue_id = senior.id
        session.commit()
    add_items(app, "support", 10, confidence=0.55)
    reviewer(factory, support, email="keys@example.com")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, "keys@example.com")
    page.goto(f"{live_server}/queues/support/review")

    wait_for_item(page, "item-1")
    page.keyboard.press("a")
    wait_for_item(page, "item-2")
    # Override: label 2, Tab to the reason, first reason, Enter.
    for key in ("2", "Tab", "ArrowDown", "Enter"):
        page.keyboard.press(key)
    wait_for_item(page, "item-3")
    assert page.is_visible("#undo-button")
    page.keyboard.press("u")  # changed my mind about item-2
    wait_for_item(page, "item-2")
    assert "Undone: item-2 is back with you." in page.inner_text("#review-item")
    page.keyboard.press("a")
    wait_for_item(page, "item-3")
    # Skip with a reason: s opens the list, ArrowDown picks the first reason, Enter sends.
    for key in ("s", "ArrowDown", "Enter"):
        page.keyboard.press(key)
    wait_for_item(page, "item-4")
    # Escalate with a note: e focuses the note, typing letters does not trigger shortcuts.
    page.keyboard.press("e")
    page.keyboard.type("a lawyer is involved")
    page.keyboard.press("Enter")
    wait_for_item(page, "item-5")
    assert "Escalated item-4 to Senior desk." in page.inner_text("#review-item")
    for number in range(5, 11):
        wait_for_item(page, f"item-{number}")
        page.keyboard.press("a")
    # Nothing else is left for this reviewer: the item they skipped comes back to them.
    wait_for_item(page, "item-3")

    with app.app_context():
        session = db_session()
        rows = session.execute(
            select(Item.external_id, Review.action, Review.reason_code)
            .join(Review, Review.item_id == Item.id)
            .order_by(Item.id)
        ).all()
        decided = {row.external_id: row.action for row in rows}
        assert decided == {
            **{f"item-{n}": "approved" for n in (1, 2, 5, 6, 7, 8, 9, 10)},
        }
        item_3 = session.scalar(select(Item).where(Item.external_id == "item-3"))
        item_4 = session.scalar(select(Item).where(Item.external_id == "item-4"))
        assert item_3.status == "needs_review" and item_3.leased_by_id is not None  # back
        assert (item_4.queue_id, item_4.status) == (senior.id, "needs_review")
        kinds = session.scalars(select(ItemEvent.kind).order_by(ItemEvent.id)).all()
        assert kinds[:4] == ["decided", "decided", "undone", "decided"]
        assert "skipped" in kinds and "escalated" in kinds


def test_two_reviewers_at_once_never_see_the_same_item(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 8)
    pages = []
    for email in ("one@example.com", "two@example.com"):
        reviewer(factory, support, email=email)
        context = browser.new_context()
        page = context.new_page()
        log_in(page, live_server, email)
        page.goto(f"{live_server}/queues/support/review")
        page.wait_for_selector("#review-item[data-external-id]")
        pages.append(page)
    seen: list[set[str]] = [set(), set()]
    for _ in range(4):
        current = [shown(page) for page in pages]
        assert current[0] != current[1]
        for index, page in enumerate(pages):
            seen[index].add(current[index])
            page.keyboard.press("a")
        for index, page in enumerate(pages):
            page.wait_for_function(
                "old => document.querySelector('#review-item').dataset.externalId !== old",
                arg=current[index],
            )
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 8


def test_a_lapsed_or_closed_lease_returns_the_item(app, factory, live_server, browser):
    app.config["LEASE_SECONDS"] = 3  # heartbeat every second
    support = factory.queue("support")
    add_items(app, "support", 1)
    reviewer(factory, support, email="holder@example.com")
    reviewer(factory, support, email="waiter@example.com")
    holder = browser.new_context().new_page()
    log_in(holder, live_server, "holder@example.com")
    holder.goto(f"{live_server}/queues/support/review")
    wait_for_item(holder, "item-1")

    waiter = browser.new_context().new_page()
    log_in(waiter, live_server, "waiter@example.com")
    waiter.goto(f"{live_server}/queues/support/review")
    waiter.wait_for_selector("text=Nothing to review right now")
    holder.wait_for_timeout(4500)  # longer than the lease: only the heartbeat keeps it
    waiter.reload()
    waiter.wait_for_selector("text=Nothing to review right now")

    # The holder's page goes quiet (a frozen laptop): the lease lapses, the item returns.
    holder.route("**/heartbeat", lambda route: route.abort())
    waiter.wait_for_selector("#review-item[data-external-id='item-1']", timeout=15000)
    holder.unroute("**/heartbeat")
    holder.wait_for_selector("text=Your hold on this item lapsed", timeout=5000)

    # Closing the page gives the item back at once, without waiting for the lease.
    waiter.close()
    for _ in range(50):  # the beacon is sent asynchronously as the page goes
        with app.app_context():
            item = db_session().scalar(select(Item))
            if item.leased_by_id is None:
                break
        holder.wait_for_timeout(100)
    assert item.leased_by_id is None and item.status == "needs_review"


def test_a_reload_keeps_the_item_and_the_first_decision_is_saved(
    app, factory, live_server, browser
):
    # As the page goes it releases its items (sendBeacon); the reload's own request can be
    # answered first and resume them. The first decision on the new page used to be
    # refused: "you no longer hold this item".
    support = factory.queue("support")
    add_items(app, "support", 8)
    reviewer(factory, support, email="reloader@example.com")
    page = browser.new_page()
    log_in(page, live_server, "reloader@example.com")
    releases: list[str | None] = []  # the page id each release named

    def record(sender, response, **extra):  # noqa: ANN001, ANN003, ARG001
        if request.path.endswith("/release"):
            releases.append(request.form.get("page"))

    request_finished.connect(record, app)
    for round_ in range(3):
        page.goto(f"{live_server}/queues/support/review")
        wait_for_item(page, f"item-{2 * round_ + 1}")
        page.reload()
        wait_for_item(page, f"item-{2 * round_ + 1}")
        page.wait_for_timeout(300)  # the old page's releases have arrived by now
        page.keyboard.press("a")
        page.wait_for_selector(f"text=Saved item-{2 * round_ + 1}")
        wait_for_item(page, f"item-{2 * round_ + 2}")
        page.keyboard.press("a")
        page.wait_for_selector(f"text=Saved item-{2 * round_ + 2}")
    request_finished.disconnect(record, app)
    # The old pages did send their releases, each naming its page.
    assert releases and all(releases)
    with app.app_context():
        decided = db_session().scalars(select(Review.item_id)).all()
    assert len(decided) == 6


def test_e_says_so_when_the_queue_has_no_escalation_queue(app, factory, live_server, browser):
    # Silence made the reviewer type the note they expected into the page, where "a" approves.
    support = factory.queue("support")  # no second-level queue
    add_items(app, "support", 3)
    reviewer(factory, support, email="no-escalation@example.com")
    page = browser.new_page()
    log_in(page, live_server, "no-escalation@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    page.keyboard.press("e")
    alert = page.locator("#review-error")
    alert.wait_for(state="visible")
    assert alert.text_content() == "This queue has no second-level queue to escalate to."
    assert shown(page) == "item-1"
    page.keyboard.press("a")
    wait_for_item(page, "item-2")
    assert alert.is_hidden()  # the next item starts without the message


def test_ai_down_banner_and_items_without_a_recommendation(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 2, with_recommendation=False)
    with app.app_context():
        session = db_session()
        session.execute(
            update(Item).values(status="needs_review", ai_status="unavailable", routed_at=utcnow())
        )
        session.commit()
    reviewer(factory, support, email="calm@example.com")
    page = browser.new_page()
    log_in(page, live_server, "calm@example.com")
    page.goto(f"{live_server}/queues/support/review")
    banner = page.wait_for_selector(".banner-down >> text=The AI is unavailable")
    assert banner.is_visible()
    assert "the AI service could not be reached" in page.inner_text("#no-recommendation")
    assert page.is_disabled("#approve-button")
    # The reviewer keeps working: override by keyboard.
    for key in ("1", "Tab", "ArrowDown", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function(
        "() => document.querySelector('#review-item').dataset.externalId === 'item-2'"
    )


def test_a_key_pressed_as_soon_as_the_next_item_appears_is_not_lost(
    app, factory, live_server, browser
):
    # The full-loop stall: the next item was on screen (and #decision focused) a moment
    # before the page had wired it up, and a key pressed in that moment was swallowed.
    support = factory.queue("support")
    add_items(app, "support", 3, confidence=0.9)
    reviewer(factory, support, email="quick@example.com")
    page = browser.new_page()
    log_in(page, live_server, "quick@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    # In the very next task after item-2 is swapped in, press "a" where the focus is.
    page.evaluate(
        """() => document.addEventListener('htmx:afterSwap', function once() {
            if (document.querySelector('#review-item').dataset.externalId !== 'item-2') { return; }
            document.removeEventListener('htmx:afterSwap', once);
            setTimeout(() => document.activeElement.dispatchEvent(
                new KeyboardEvent('keydown', {key: 'a', bubbles: true, cancelable: true})), 0);
        })"""
    )
    page.keyboard.press("a")
    wait_for_item(page, "item-3")
    with app.app_context():
        query = select(Item.external_id).join(Review, Review.item_id == Item.id)
        decided = db_session().scalars(query.order_by(Item.id)).all()
    assert decided == ["item-1", "item-2"]


def _review_with_decisions_held(app, factory, live_server, browser):
    """A reviewer's review page on item-1 of three, whose decision requests are held
    (appended to `held`) until the test continues them. Returns (page, held)."""
    support = factory.queue("support")
    add_items(app, "support", 3)
    reviewer(factory, support, email="held@example.com")
    page = browser.new_page()
    held = []
    # Routed before the page loads: a route added just before the key press was now and
    # then not yet in force, and the decision went through unheld.
    page.route("**/decision", lambda route: held.append(route))
    log_in(page, live_server, "held@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    return page, held


def test_the_prefetched_item_is_on_screen_as_soon_as_the_decision_is_sent(
    app, factory, live_server, browser
):
    page, held = _review_with_decisions_held(app, factory, live_server, browser)
    sent = []
    page.on("request", lambda request: sent.append(request.url))
    page.keyboard.press("a")
    page.wait_for_selector(".review-preview >> text=Ticket item 2")  # before any answer
    assert page.is_hidden("#decision-form")
    assert len(held) == 1 and [url.rsplit("/", 1)[-1] for url in sent] == ["decision"]
    held[0].continue_()
    wait_for_item(page, "item-2")
    assert page.query_selector(".review-preview") is None
    assert "Saved item-1" in page.inner_text("#review-item")


def _normalized(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r">\s+<", "><", html)).strip()


SHOWN_PARTS = """() => {
    const grid = document.querySelector('#review-item .review-grid:not(.review-preview)');
    return [grid.querySelector('.item-card').outerHTML, grid.querySelector('.ai-rec').outerHTML];
}"""
# The same parts as the server draws them in full: the review page's item fragment, fetched
# aside (the page and its leases stay as they are; the item shown is the lease resumed).
FULL_PARTS = """async () => {
    const headers = {'HX-Request': 'true', 'HX-Target': 'review-item'};
    const answer = document.createElement('template');
    answer.innerHTML = await (await fetch(location.pathname, {headers})).text();
    const grid = answer.content.querySelector('.review-grid:not(.review-preview)');
    return [grid.querySelector('.item-card').outerHTML, grid.querySelector('.ai-rec').outerHTML];
}"""


def test_a_saved_decision_brings_only_what_the_preview_lacks(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 4)
    reviewer(factory, support, email="short@example.com")
    page = browser.new_page()
    log_in(page, live_server, "short@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    answers = []
    page.on("response", lambda answer: "/decision" in answer.url and answers.append(answer))
    page.keyboard.press("a")
    wait_for_item(page, "item-2")
    # The answer left item-2's card and recommendation to the preview ...
    assert answers[0].request.headers.get("x-review-preview")
    body = answers[0].text()
    assert 'data-from-preview="item-card"' in body and 'id="item-heading"' not in body
    # ... and the screen is the one a full answer draws: same card (with its history) and
    # recommendation, ids without the preview's prefix, the saved note and its undo.
    assert "Saved item-1" in page.inner_text("#review-item") and page.is_visible("#undo-button")
    assert page.eval_on_selector_all("#review-item [id^='next-']", "found => found.length") == 0
    assert page.inner_text("#item-heading") == "Item item-2"
    assert "AI suggested" in page.text_content(".item-card .history")  # collapsed
    assert "Approve “approve”" in page.inner_text("#approve-button")
    assert [_normalized(part) for part in page.evaluate(SHOWN_PARTS)] == [
        _normalized(part) for part in page.evaluate(FULL_PARTS)
    ]
    # The loop carries on from a short answer as from a full one, undo included.
    page.keyboard.press("a")
    wait_for_item(page, "item-3")
    page.keyboard.press("u")
    wait_for_item(page, "item-2")
    page.keyboard.press("a")
    wait_for_item(page, "item-3")
    with app.app_context():
        query = select(Item.external_id).join(Review, Review.item_id == Item.id)
        assert db_session().scalars(query.order_by(Item.id)).all() == ["item-1", "item-2"]


def test_a_short_answer_the_page_cannot_complete_is_fetched_in_full(
    app, factory, live_server, browser
):
    page, held = _review_with_decisions_held(app, factory, live_server, browser)
    page.keyboard.press("a")
    page.wait_for_selector(".review-preview")
    # The preview goes before the (short) answer comes: the page asks for the item in full.
    page.evaluate("() => document.querySelector('.review-preview').remove()")
    held[0].continue_()
    wait_for_item(page, "item-2")
    assert page.inner_text("#item-heading") == "Item item-2"
    assert page.is_visible("#decision-form") and page.query_selector("[data-from-preview]") is None


def test_back_to_the_review_page_after_leaving_it_shows_items_the_reviewer_holds(
    app, factory, live_server, browser
):
    # Leaving the page released its items. Back to it, Chromium showed its cached copy
    # (navigation type back_forward, no request), still showing them, and the first key
    # was refused ("you no longer hold this item"). The page is now never cached, and
    # brought back from the back-forward cache it loads itself anew: either way, a new load.
    support = factory.queue("support")
    add_items(app, "support", 4)
    reviewer(factory, support, email="back@example.com")
    page = browser.new_page()
    log_in(page, live_server, "back@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    first_load = page.get_attribute("[data-review-page]", "data-review-page")
    page.goto(f"{live_server}/queues/support")
    page.wait_for_selector("text=Start reviewing")
    page.wait_for_timeout(300)  # the releases have arrived by now
    with app.app_context():
        held = db_session().scalar(select(Item.leased_by_id).where(Item.external_id == "item-1"))
    assert held is None

    page.go_back()
    page.wait_for_function(
        "old => (document.querySelector('[data-review-page]') || {dataset: {}})"
        ".dataset.reviewPage !== old",
        arg=first_load,
    )
    wait_for_item(page, "item-1")
    page.keyboard.press("a")

    page.wait_for_selector("text=Saved item-1")
