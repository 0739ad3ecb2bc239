"""An admin answers "who decided item X, under which policy, on what AI advice, and was
the downstream system told" from the audit page in a real browser (htmx under the CSP)."""

from __future__ import annotations

import pytest

from models import User
from review.db import db_session
from review.services import ingest, queues, reviewing
from tests.browser.test_admin import log_in
from workers.audit_jobs import seal_pending

SCREENSHOT = "/tmp/admin-audit.png"


@pytest.mark.browser
def test_admin_finds_an_items_decision_trail_from_the_audit_search(
    app, factory, live_server, browser
):
    factory.user("admin", email="boss@example.com")
    queue = factory.queue("loans")
    reviewer = factory.user("reviewer", email="rita@example.com")
    factory.member(queue, reviewer)
    with app.app_context():
        session = db_session()
        loans = queues.get_queue(session, "loans")
        body = {
            "external_id": "LOAN-7",
            "payload": {"text": "Applicant asks for 5,000"},
            "recommendation": {"label": "approve", "confidence": 0.62, "model": "credit-v2"},
        }
        parsed, _ = ingest.parse_ingest_body(body, loans)
        item = ingest.ingest(session, loans, parsed)[0].item
        session.commit()
        reviewing.decide(
            session,
            item.id,
            session.get(User, reviewer.id),
            {"action": "override", "label": "reject", "reason_code": "missing_context"},
        )
        session.commit()
        seal_pending(app.extensions["db"])

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server, "boss@example.com")
    page.click("text=Admin")
    page.click("text=Audit log")
    page.wait_for_selector("#chain-status.chain-ok")  # verified by an htmx request
    assert "Chain intact" in page.inner_text("#chain-status")

    page.fill("#item", "LOAN-7")
    page.click("button:has-text('Search')")
    page.wait_for_url("**/admin/audit/?*item=LOAN-7*")  # htmx swapped and pushed the URL
    rows = page.locator("#audit-events tbody tr")
    assert rows.count() == 1
    assert "item.overridden" in rows.first.inner_text()
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.click("#audit-events a:has-text('LOAN-7')")
    page.wait_for_selector("#trail-summary")
    assert "rita@example.com" in page.inner_text("#decided-by")
    assert "version 1" in page.inner_text("#under-policy")
    assert "“approve” at 62.0% from credit-v2" in page.inner_text("#ai-advice")
    assert "no webhook event" in page.inner_text("#downstream")
    page.screenshot(path="/tmp/admin-audit-item.png", full_page=True)
