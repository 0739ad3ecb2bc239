"""An admin sets up a queue, adds a reviewer and imports a CSV in a real browser; the
reviewer then finds the imported items. No API involved."""

from __future__ import annotations

import pytest

SCREENSHOT = "/tmp/admin-import.png"


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", "password123")
    page.press("#password", "Enter")
    page.wait_for_url(f"{base_url}/**")


@pytest.mark.browser
def test_admin_creates_a_queue_adds_a_reviewer_and_imports_a_csv(
    app, factory, live_server, browser, tmp_path
):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    factory.user("admin", email="boss@example.com")
    factory.user("reviewer", email="rita@example.com")
    csv_path = tmp_path / "tickets.csv"
    lines = ["id,subject,body,label,confidence"]
    lines += [f"R-{n},Refund {n},Order {n} arrived broken,approve_refund,0.7" for n in range(1, 9)]
    lines.append("R-9,Bad,Too confident,approve_refund,7")
    csv_path.write_text("\n".join(lines) + "\n")

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server, "boss@example.com")
    page.click("text=Admin")
    page.click("text=New queue")
    page.fill("#name", "Refund requests")
    page.fill("#slug", "refunds")
    page.fill("#labels", "approve_refund\ndeny_refund")
    page.fill("#reason_codes", "wrong_label")
    page.fill("#instructions", "Approve refunds within policy.\n\nEscalate big ones.")
    # The live preview follows the typing (htmx, after a short pause).
    page.wait_for_selector("#reviewer-preview p:has-text('Escalate big ones.')")
    page.select_option("#recommender_kind", "none")
    page.check("label:has-text('rita@example.com')")
    page.click("button:has-text('Create queue')")
    page.wait_for_url("**/admin/queues/refunds/edit")
    assert page.is_checked("label:has-text('rita@example.com') >> xpath=preceding-sibling::input")

    page.click("text=Import items")
    page.set_input_files("#file", str(csv_path))
    page.click("text=Upload and map columns")
    page.wait_for_selector("#mapping-form")
    page.fill("#model_name", "legacy-rules")
    page.click("#check-rows")
    page.wait_for_selector("#report-counts")
    assert page.inner_text("[data-count=errors]") == "1"
    assert "confidence “7”" in page.inner_text("#problems")
    page.screenshot(path=SCREENSHOT, full_page=True)
    page.click("#confirm-import")
    page.wait_for_selector("#import-done")
    assert "8 items created" in page.inner_text("#import-done")

    page.click("text=Log out")
    log_in(page, live_server, "rita@example.com")
    row = page.locator("tr[data-queue=refunds]")
    assert row.locator("[data-count=needs_review]").inner_text() == "8"
    page.goto(f"{live_server}/queues/refunds/review")
    page.wait_for_selector("#review-item")
    assert "Approve refunds within policy." in page.inner_text(".instructions")
