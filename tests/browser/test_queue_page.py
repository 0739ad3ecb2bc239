"""The queue page in real headless Chromium: its live counts arrive by htmx once the page
has loaded, under the page's filters, and its keyset pages link onwards."""

from __future__ import annotations

import pytest

from tests.browser.test_review_keyboard import log_in, wait_for_item
from tests.services.test_reviewing import claim, decide
from tests.web.ui_helpers import add_items, reviewer_in

pytestmark = pytest.mark.browser


def test_the_counts_load_under_the_filters_and_the_pages_link_on(
    app, factory, live_server, browser, monkeypatch
):
    support = factory.queue("support")
    add_items(app, "support", 3)
    add_items(app, "support", 2, prefix="rej", label="reject")
    reviewer_in(factory, support, email="quinn@example.com")
    monkeypatch.setattr("review.services.queue_views.PAGE_SIZE", 1)
    page = browser.new_page()
    log_in(page, live_server, "quinn@example.com")
    page.goto(f"{live_server}/queues/support?label=reject&sort=oldest")
    matching = page.wait_for_selector('#queue-counts [data-count="matching"]')
    assert matching.inner_text() == "2"
    assert page.inner_text('#queue-counts [data-count="needs_review"]') == "5"
    assert page.inner_text("tbody th") == "rej-1"
    page.click('a[rel="next"]')
    page.wait_for_selector('tbody th >> text="rej-2"')
    assert page.wait_for_selector('#queue-counts [data-count="matching"]').inner_text() == "2"


def test_an_item_opened_from_the_list_is_reviewed_then_found_among_the_decided(
    app, factory, live_server, browser
):
    support = factory.queue("support")
    add_items(app, "support", 4)
    reviewer_in(factory, support, email="pick@example.com")
    page = browser.new_page()
    log_in(page, live_server, "pick@example.com")
    page.goto(f"{live_server}/queues/support")

    page.click('tbody th a >> text="item-3"')  # not the one the queue would hand out first
    page.wait_for_selector("text=Status: awaiting review")
    page.click("#take-item")
    wait_for_item(page, "item-3")
    page.keyboard.press("a")
    page.wait_for_selector("text=Saved item-3")

    page.goto(f"{live_server}/queues/support")
    page.fill("#find-item", "item-3")
    page.press("#find-item", "Enter")
    page.wait_for_selector("text=Status: decided by a person")
    assert "pick@example.com" in page.inner_text("#item-decision")
    page.goto(f"{live_server}/queues/support?status=decided")
    assert page.inner_text("tbody th") == "item-3"


def test_decided_items_are_narrowed_to_one_reviewers_overrides(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 3)
    ada = reviewer_in(factory, support, email="ada@example.com")
    ben = reviewer_in(factory, support, email="ben@example.com")
    override = {"action": "override", "label": "escalate", "reason_code": "wrong_label"}
    for person, data in ((ada, {"action": "approve"}), (ada, override), (ben, override)):
        decide(app, claim(app, "support", person.id), person.id, data)
    page = browser.new_page()
    log_in(page, live_server, "ada@example.com")
    page.goto(f"{live_server}/queues/support")

    page.select_option("#f-status", "decided")
    page.select_option("#f-outcome", "overridden")
    page.select_option("#f-decided-by", label="ada@example.com")
    # The sort is left as the waiting items had it: decided items come latest first.
    assert page.eval_on_selector("#f-sort", "e => e.value") == ""
    page.click("text=Apply")
    page.wait_for_selector('#queue-counts [data-count="matching"] >> text="1"')
    assert page.inner_text("tbody th") == "item-2"
    assert page.inner_text("tbody tr td:last-child") == "ada@example.com"
    # The form keeps what was chosen.
    assert page.eval_on_selector("#f-outcome", "e => e.value") == "overridden"
    assert page.eval_on_selector("#f-decided-by", "e => e.value") == str(ada.id)
