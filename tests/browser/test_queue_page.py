"""The queue page in real headless Chromium: its live counts arrive by htmx once the page
has loaded, under the page's filters, and its keyset pages link onwards."""

from __future__ import annotations

import pytest

from tests.browser.test_review_keyboard import log_in
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
