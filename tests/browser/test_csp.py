"""The htmx pages work under the Content Security Policy, in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.test_review_keyboard import log_in, wait_for_item
from tests.web.ui_helpers import add_items


@pytest.mark.browser
def test_the_review_page_works_under_the_policy(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 2)
    factory.member(support, factory.user("reviewer", email="csp@example.com"))
    page = browser.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    log_in(page, live_server, "csp@example.com")
    page.goto(f"{live_server}/queues/support/review")
    wait_for_item(page, "item-1")
    page.keyboard.press("a")  # approve over htmx: the next item is swapped in
    wait_for_item(page, "item-2")
    assert violations == []


@pytest.mark.browser
def test_the_policy_and_admin_pages_load_under_the_policy(app, factory, live_server, browser):
    support = factory.queue("support")
    add_items(app, "support", 3)
    factory.member(support, factory.user("admin", email="csp-admin@example.com"))
    page = browser.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    log_in(page, live_server, "csp-admin@example.com")
    for path in ("/policy/queues/support/", "/admin/", "/admin/tokens/", "/admin/people/"):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
    assert violations == []
