"""A policy owner moves a threshold slider in a real browser and reads the new figures."""

from __future__ import annotations

import pytest

from review.db import db_session
from review.services import queues
from tests.web.policy.helpers import Row, add_member, seed


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", "password123")
    page.press("#password", "Enter")
    page.wait_for_url(f"{base_url}/")


def figure(page, index: int, name: str) -> str:
    return page.locator(f'#figures-{index} [data-figure="{name}"]').inner_text().strip()


@pytest.mark.browser
def test_slider_updates_automation_precision_and_errors(
    app, factory, live_server, browser, monkeypatch
):
    queue = factory.queue("tickets", name="Tickets")
    owner = factory.user("policy_owner", email="owner@example.com")
    add_member(app, queue.slug, owner)
    rows = [Row("approve", 0.95, "approve") for _ in range(40)]
    rows += [Row("approve", 0.5, "approve" if i < 6 else "reject") for i in range(10)]
    seed(app, monkeypatch, queue.slug, rows, factory.user("reviewer"))

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, "owner@example.com")
    page.goto(f"{live_server}/policy/queues/tickets/")
    # The new queue's policy auto-approves nothing: threshold 1.
    assert figure(page, 0, "automation") == "0.0%"
    assert figure(page, 0, "precision") == "no evidence"

    page.locator("#slider-0").fill("0.9")
    page.wait_for_function(
        "() => document.querySelector('#figures-0 [data-figure=automation]')"
        ".textContent.trim() === '80.0%'"
    )
    assert figure(page, 0, "precision") == "100.00%"
    assert page.locator("#slider-out-0").inner_text() == "0.900"
    # The new-version form follows the slider, and so do the policy totals.
    assert page.locator("#version-0").input_value() == "0.900"
    assert page.locator('[data-figure="total-automation"]').inner_text() == "80.0%"

    page.locator("#slider-0").fill("0.3")
    page.wait_for_function(
        "() => document.querySelector('#figures-0 [data-figure=precision]')"
        ".textContent.trim() === '92.00%'"
    )
    assert figure(page, 0, "automation") == "100.0%"
    # 50 items a day, all auto-approved, 8% wrong.
    assert figure(page, 0, "errors") == "4.0"

    page.fill("#note", "evidence supports 0.9 for approve")
    page.locator("#slider-0").fill("0.9")
    page.wait_for_function("() => document.querySelector('#version-0').value === '0.900'")
    page.get_by_role("button", name="Activate version 2").click()
    page.wait_for_url(f"{live_server}/policy/queues/tickets/versions")
    with app.app_context():
        policy = queues.current_policy(db_session(), queues.get_queue(db_session(), "tickets"))
        assert (policy.version, policy.thresholds["approve"]) == (2, 0.9)
