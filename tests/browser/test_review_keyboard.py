"""A reviewer works through a queue with the keyboard alone, in a real browser."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Item, Review
from review.db import db_session
from tests.web.ui_helpers import add_items

SCREENSHOT = "/tmp/review.png"
ITEMS = 10


def wait_for_item(page, external_id: str) -> None:
    """Wait until the item is shown, focus is on the decision area and it was announced."""
    page.wait_for_function(
        """id => {
            const item = document.querySelector('#review-item');
            const status = document.querySelector('#review-status').textContent;
            return item && item.dataset.externalId === id
                && document.activeElement && document.activeElement.id === 'decision'
                && status === 'Item ' + id + ' loaded';
        }""",
        arg=external_id,
    )


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", "password123")
    page.press("#password", "Enter")
    page.wait_for_url(f"{base_url}/")


@pytest.mark.browser
def test_review_ten_items_with_the_keyboard_only(app, factory, live_server, browser):
    support = factory.queue("support", name="Support tickets")
    add_items(
        app,
        "support",
        ITEMS,
        confidence=0.61,
        payload={
            "subject": "Cannot log in",
            "body": "I reset my password twice and it "
            "still fails.\n\nPlease help, this blocks my whole team.",
            "plan": "team",
            "customer": {"id": 4211, "since": "2021-03-04"},
        },
    )
    factory.member(support, factory.user("reviewer", email="keys@example.com"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, "keys@example.com")
    page.goto(f"{live_server}/queues/support/review")

    for number in range(1, ITEMS + 1):
        wait_for_item(page, f"item-{number}")
        if number == 4:
            # o, then label 2 ("reject"), Tab to the reason codes, pick the first, Enter.
            page.keyboard.press("o")
            page.keyboard.press("2")
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowDown")
            assert page.eval_on_selector("#decision-form", "f => f.dataset.mode") == "override"
            assert page.input_value("#reason_code") == "wrong_label"
            page.screenshot(path=SCREENSHOT, full_page=True)
            page.keyboard.press("Enter")
        elif number == 8:
            # Label 3 ("escalate") straight from the digit, reason two down, then a comment
            # whose letters and digits must not act as shortcuts, sent with Ctrl+Enter.
            page.keyboard.press("3")
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Tab")
            page.keyboard.type("a 1 o")
            assert page.eval_on_selector("#review-item", "e => e.dataset.externalId") == "item-8"
            page.keyboard.press("Control+Enter")
        else:
            if number == 1:
                page.keyboard.press("?")
                assert page.is_visible("#shortcut-help")
                page.keyboard.press("a")  # ignored while the help is open
                page.keyboard.press("Escape")
                assert not page.is_visible("#shortcut-help")
                assert (
                    page.eval_on_selector("#review-item", "e => e.dataset.externalId") == "item-1"
                )
            page.keyboard.press("a")

    page.wait_for_selector("text=Nothing to review right now")

    with app.app_context():
        session = db_session()
        reviews = session.execute(
            select(
                Item.external_id,
                Review.action,
                Review.final_label,
                Review.reason_code,
                Review.comment,
            )
            .join(Item, Item.id == Review.item_id)
            .order_by(Item.id)
        ).all()
    assert len(reviews) == ITEMS
    overrides = [row for row in reviews if row.action == "overridden"]
    assert [tuple(row) for row in overrides] == [
        ("item-4", "overridden", "reject", "wrong_label", ""),
        ("item-8", "overridden", "escalate", "missing_context", "a 1 o"),
    ]
    assert all(row.final_label == "approve" for row in reviews if row.action == "approved")
