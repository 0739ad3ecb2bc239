"""In a real browser: start a snapshot, watch htmx poll its progress, see the datasheet."""

from __future__ import annotations

import pytest

from tests.web.exports.helpers import decided, use_export_dir
from tests.workers.helpers import run_worker

pytestmark = pytest.mark.browser


def test_snapshot_page_polls_until_built_then_shows_the_datasheet(
    app,
    factory,
    browser,
    live_server,
    tmp_path,
):
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support", name="Support tickets")
    decided(app, "support", factory.user("reviewer"), 9, prefix="b")  # 3 overrides
    ml = factory.user("ml")
    page = browser.new_page()
    page.goto(f"{live_server}/login")
    page.fill("#email", ml.email)
    page.fill("#password", "password123")
    page.press("#password", "Enter")
    page.goto(f"{live_server}/ml/queues/support/datasets")
    page.check("input[name=scope][value=overrides]")
    page.fill("#last_days", "7")
    page.click("button:has-text('Create snapshot')")
    page.wait_for_selector("#snapshot-status [data-status=queued]")

    run_worker(app)  # the job runs while the page is open; htmx polls every second
    page.wait_for_selector("[data-status=succeeded]", timeout=15_000)
    assert page.inner_text("[data-count=rows]") == "3"
    assert page.is_visible("text=Download dataset (.zip)")
    assert page.locator("[data-sha256]").inner_text().strip().isalnum()
    page.screenshot(path=str(tmp_path / "snapshot.png"), full_page=True)
