"""The queue list shows each Claude queue's AI spend today, and says when the budget is spent."""

from __future__ import annotations

import re
from datetime import timedelta

from models import AiBatch, AiCall
from models.base import utcnow
from review.db import db_session
from tests.conftest import login
from tests.web.ui_helpers import reviewer_in


def spend(app, queue, usd: float, *, days_ago: int = 0) -> None:
    """A billed Claude call of `usd` on the queue, made `days_ago` days ago."""
    with app.app_context():
        session = db_session()
        session.add(
            AiCall(
                queue_id=queue.id,
                provider="anthropic",
                model="claude-haiku-5-5",
                mode="interactive",
                outcome="ok",
                cost_usd=usd,
                created_at=utcnow() - timedelta(days=days_ago),
            )
        )
        session.commit()


def budget_line(html: str, slug: str) -> str | None:
    row = re.search(rf'<tr data-queue="{slug}">(.*?)</tr>', html, re.S).group(1)
    found = re.search(r"<span[^>]*data-ai-budget>(.*?)</span>", row, re.S)
    return " ".join(found.group(1).split()) if found else None


def test_the_queue_list_shows_todays_ai_spend_against_the_budget(app, client, factory):
    claude = factory.queue(
        "claude-q", name="Claude queue", recommender={"kind": "claude", "daily_budget_usd": 2}
    )
    uncapped = factory.queue("uncapped", name="No cap", recommender={"kind": "claude"})
    local = factory.queue("local-q", name="Local queue")
    spend(app, claude, 0.75)
    spend(app, claude, 5.0, days_ago=1)  # yesterday's spend is not today's
    spend(app, uncapped, 0.0042)
    login(client, reviewer_in(factory, claude, uncapped, local).email)

    html = client.get("/").text

    assert budget_line(html, "claude-q") == "AI spend today: $0.75 of $2.00"
    assert budget_line(html, "uncapped") == "AI spend today: $0.0042 (no daily cap)"
    assert budget_line(html, "local-q") is None  # no Claude, no AI bill
    assert "AI budget exhausted" not in html


def test_a_spent_budget_puts_a_banner_on_the_queue_list(app, client, factory):
    claude = factory.queue(
        "claude-q", name="Claude queue", recommender={"kind": "claude", "daily_budget_usd": 1}
    )
    other = factory.queue(
        "other-q", name="Other queue", recommender={"kind": "claude", "daily_budget_usd": 1}
    )
    spend(app, claude, 0.6)
    spend(app, claude, 0.4)
    spend(app, other, 0.2)
    login(client, reviewer_in(factory, claude, other).email)

    html = client.get("/").text

    banners = re.findall(r'data-ai-budget-exhausted="([^"]+)"', html)
    assert banners == ["claude-q"]
    assert "Claude queue: AI budget exhausted." in html
    assert budget_line(html, "claude-q") == "AI spend today: $1.00 of $1.00"


def test_what_batches_in_progress_hold_shows_beside_the_spend(app, client, factory):
    claude = factory.queue(
        "claude-q", name="Claude queue", recommender={"kind": "claude", "daily_budget_usd": 1}
    )
    spend(app, claude, 0.25)
    with app.app_context():
        session = db_session()
        session.add(
            AiBatch(
                queue_id=claude.id,
                provider_batch_id="msgbatch_held",
                model="claude-haiku-5-5",
                prompt_version="v1",
                requests={},
                reserved_usd=0.75,
            )
        )
        session.commit()
    login(client, reviewer_in(factory, claude).email)

    html = client.get("/").text

    assert budget_line(html, "claude-q") == (
        "AI spend today: $0.25 of $1.00, $0.75 more held by batches in progress"
    )
    assert "is spent or held by batches in progress" in html
    assert "until a batch ends or 00:00 UTC" in html
