"""The whole loop as a new user meets it, in a real browser.

The demo is seeded, a real RQ worker recommends and routes the fresh tickets, the demo
reviewer clears ten of them with the keyboard alone (two overrides), and the demo ML user
downloads the overrides from the ML page and finds exactly those two.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from models import Item, Review
from review.db import db_session
from workers.worker import create_worker

DEMO_PASSWORD = "demo-password"
REVIEWS = 10
OVERRIDE_AT = {3, 7}  # the 3rd and 7th item reviewed are overridden


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_load_state("networkidle")


def shown_external_id(page) -> str:
    return page.eval_on_selector("#review-item", "e => e.dataset.externalId")


def wait_for_next_item(page, previous: str | None) -> str:
    """Wait until a new item is shown and focus is where the next key expects it."""
    page.wait_for_function(
        """previous => {
            const item = document.querySelector('#review-item');
            return item && item.dataset.externalId && item.dataset.externalId !== previous
                && document.activeElement && document.activeElement.id === 'decision';
        }""",
        arg=previous,
    )
    return shown_external_id(page)


@pytest.mark.browser
def test_seeded_demo_reviewed_by_keyboard_and_exported(app, runner, live_server, browser, tmp_path):
    seeded = runner.invoke(args=["seed", "demo"])
    assert seeded.exit_code == 0, seeded.output
    with app.app_context():
        create_worker(app, simple=True).work(burst=True)
        session = db_session()
        assert session.scalar(select(func.count()).where(Item.status == "pending")) == 0
        waiting = session.scalar(select(func.count()).where(Item.status == "needs_review"))
        recommended = session.scalar(
            select(func.count()).where(Item.status != "decided", Item.ai_status == "ok")
        )
    assert waiting >= REVIEWS
    assert recommended > 0, "the local model trained on the demo history should recommend"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, "reviewer@demo.local")
    page.goto(f"{live_server}/queues/support-triage/review")
    overridden: list[str] = []
    reviewed: list[str] = []
    current = None
    for number in range(1, REVIEWS + 1):
        current = wait_for_next_item(page, current)
        reviewed.append(current)
        has_recommendation = page.is_enabled("#decision-form button[value=approve]")
        if number in OVERRIDE_AT or not has_recommendation:
            # o, a label other than the AI's (an override must change the label), Tab to
            # the reason codes, pick one with the arrow key, Enter.
            choices = page.eval_on_selector_all(
                "#decision-form input[name=label]",
                "els => els.map(e => [e.dataset.key, e.labels[0].textContent])",
            )
            key = next(key for key, text in choices if "the AI's label" not in text)
            page.keyboard.press("o")
            page.keyboard.press(key)
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Enter")
            overridden.append(current)
        else:
            page.keyboard.press("a")
    page.wait_for_function(
        "previous => { const i = document.querySelector('#review-item');"
        " return !i || i.dataset.externalId !== previous; }",
        arg=current,
    )

    with app.app_context():
        decided = dict(
            db_session()
            .execute(
                select(Item.external_id, Review.action)
                .join(Review, Review.item_id == Item.id)
                .where(Item.external_id.in_(reviewed))
            )
            .all()
        )
    assert len(decided) == REVIEWS, "every reviewed item is decided exactly once"
    assert sorted(e for e, action in decided.items() if action == "overridden") == sorted(
        overridden
    )

    ml_page = browser.new_page()
    log_in(ml_page, live_server, "ml@demo.local")
    ml_page.goto(f"{live_server}/ml/")
    with ml_page.expect_download() as download_info:
        ml_page.click('a[href$="/queues/support-triage/export.jsonl?overrides_only=1"]')
    path = tmp_path / "overrides.jsonl"
    download_info.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    exported = {row["external_id"]: row for row in rows}
    for external_id in overridden:
        assert exported[external_id]["overridden"] is True
        assert exported[external_id]["reviewer"] == "reviewer@demo.local"
        assert exported[external_id]["reason_code"]
    assert all(row["overridden"] for row in rows)
