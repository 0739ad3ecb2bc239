"""A queue's daily AI budget in batch mode: each request reserves the most it can cost before
its batch is sent, and the batch's billed calls replace the reservation when it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models import AiBatch, Item, Queue
from models.base import utcnow
from review.db import db_session
from review.redis_conn import get_redis
from review.services import ai_budget
from tests.workers.helpers import add_items, items_by_id, run_worker
from tests.workers.test_claude_batch import (
    TICKETS,
    batch_posts,
    batch_queue,
    batches,
    enqueue,
    ledger,
)
from workers import claude_batch
from workers.recommenders import claude

# Near the 4,096-token cap (the fake bills a quarter token per character of the answer),
# so the actual cost comes close to what was reserved and the budget is used up quickly.
LONG_RATIONALE = "The customer plainly asks for their money back. " * 300


@pytest.fixture
def batch_app(claude_app):
    """Batches sent at once and polled at once, as in test_claude_batch.py."""
    claude_app.config.update(AI_BATCH_COLLECT_SECONDS=0, AI_BATCH_POLL_SECONDS=0)
    return claude_app


def worst_cases(app, ids) -> list[float]:
    """What each item's batch request may cost at most, built as the submit job builds it."""
    with app.app_context():
        session = db_session()
        costs = []
        for item_id in ids:
            item = session.get(Item, item_id)
            request = claude.build_request(session, item.queue, item)
            costs.append(request.max_cost_usd(batch=True))
        session.rollback()
        return costs


def set_budget(app, queue_id: int, usd: float) -> None:
    with app.app_context():
        session = db_session()
        session.get(Queue, queue_id).ai_daily_budget_usd = usd
        session.commit()


def budget_of(app, queue_id: int) -> ai_budget.BudgetStatus:
    with app.app_context():
        session = db_session()
        return ai_budget.status(session, session.get(Queue, queue_id))


def poll_all(app) -> None:
    with app.app_context():
        for batch in batches(app):
            if batch.status == "in_progress":
                token = get_redis().get(claude_batch.poll_key(batch.id)).decode()
                assert claude_batch.poll_batch(batch.id, token) == "ended"


def sent_ids(post) -> list[str]:
    return sorted(r["custom_id"] for r in post["requests"])


def test_only_the_items_whose_worst_case_fits_the_budget_are_sent(
    batch_app, factory, fake_anthropic
):
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS, enqueue=False)
    costs = worst_cases(batch_app, ids)
    set_budget(batch_app, queue.id, costs[0] + costs[1] + costs[2] / 2)
    enqueue(batch_app, ids)

    run_worker(batch_app)  # sent; the batch is still running

    [post] = batch_posts(fake_anthropic)
    assert sent_ids(post) == sorted(f"item-{i}" for i in ids[:2])
    items = items_by_id(batch_app, ids)
    assert {items[i].status for i in ids[:2]} == {"pending"}
    for item_id in ids[2:]:
        assert items[item_id].status == "needs_review"
        assert items[item_id].ai_status == "budget_exhausted"
        assert items[item_id].ai_error.startswith("budget_exhausted: the daily AI budget of $")
        assert "held by Message Batches" in items[item_id].ai_error
    [batch] = batches(batch_app)
    held = [batch.requests[f"item-{i}"]["reserved_usd"] for i in ids[:2]]
    assert held == pytest.approx(costs[:2])
    budget = budget_of(batch_app, queue.id)
    assert budget.spent_usd == 0 and budget.reserved_usd == pytest.approx(sum(costs[:2]))
    assert not budget.exhausted  # half an item's worst case is left

    fake_anthropic.end_batches()
    poll_all(batch_app)

    assert {i.ai_status for i in items_by_id(batch_app, ids[:2]).values()} == {"ok"}
    calls = ledger(batch_app)
    assert sorted(c.item_id for c in calls) == ids[:2]
    for call in calls:  # the reservation bounded what was billed
        assert 0 < call.cost_usd <= batch.requests[f"item-{call.item_id}"]["reserved_usd"]
    budget = budget_of(batch_app, queue.id)
    assert budget.reserved_usd == 0
    assert budget.spent_usd == pytest.approx(sum(c.cost_usd for c in calls))


def test_what_an_ended_batch_did_not_use_is_free_for_the_next_batch_that_day(
    batch_app, factory, fake_anthropic
):
    queue = batch_queue(factory)
    first = add_items(batch_app, queue.slug, TICKETS[:2], enqueue=False)
    costs = worst_cases(batch_app, first)
    set_budget(batch_app, queue.id, sum(costs) + costs[0] / 2)
    enqueue(batch_app, first)
    run_worker(batch_app)  # the first batch holds nearly all the budget while it runs
    [meanwhile] = add_items(batch_app, queue.slug, TICKETS[2:3], prefix="meanwhile")
    run_worker(batch_app)
    assert items_by_id(batch_app, [meanwhile])[meanwhile].ai_status == "budget_exhausted"

    fake_anthropic.end_batches()
    poll_all(batch_app)  # billed well below what it held
    spent = budget_of(batch_app, queue.id).spent_usd
    assert 0 < spent < sum(costs) / 2
    # The same tickets again: the same worst case, which only the freed amount can hold.
    later = add_items(batch_app, queue.slug, TICKETS[:2], prefix="later")
    run_worker(batch_app)

    posts = batch_posts(fake_anthropic)
    assert [sent_ids(p) for p in posts] == [
        sorted(f"item-{i}" for i in first),
        sorted(f"item-{i}" for i in later),
    ]
    assert {i.status for i in items_by_id(batch_app, later).values()} == {"pending"}
    budget = budget_of(batch_app, queue.id)
    assert budget.spent_usd == pytest.approx(spent)
    assert budget.reserved_usd == pytest.approx(sum(worst_cases(batch_app, later)))
    assert budget.spent_usd + budget.reserved_usd <= budget.limit_usd


def test_the_days_spend_never_exceeds_the_budget_over_several_batches(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    fake_anthropic.answer = {"rationale": LONG_RATIONALE}
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS, enqueue=False)
    limit = 5 * max(worst_cases(batch_app, ids))
    set_budget(batch_app, queue.id, limit)
    enqueue(batch_app, ids)

    for round_no in range(1, 6):
        if round_no > 1:
            ids += add_items(batch_app, queue.slug, TICKETS, prefix=f"r{round_no}")
        run_worker(batch_app)
        budget = budget_of(batch_app, queue.id)
        assert budget.reserved_usd == 0  # every batch has ended
        assert sum(c.cost_usd for c in ledger(batch_app)) == pytest.approx(budget.spent_usd)
        assert budget.spent_usd <= limit

    items = items_by_id(batch_app, ids)
    answered = [i for i in items.values() if i.ai_status == "ok"]
    refused = [i for i in items.values() if i.ai_status == "budget_exhausted"]
    assert len(answered) + len(refused) == len(ids) == 20
    assert len(batch_posts(fake_anthropic)) >= 2 and refused
    held = {
        entry["item_id"]: entry["reserved_usd"]
        for batch in batches(batch_app)
        for entry in batch.requests.values()
    }
    calls = ledger(batch_app)
    for call in calls:
        assert call.cost_usd <= held[call.item_id]
    # Sent whole, the items would have cost more than the budget.
    assert min(c.cost_usd for c in calls) * len(ids) > limit


def test_a_written_off_batch_frees_its_reservation(batch_app, factory, fake_anthropic):
    batch_app.config.update(AI_BATCH_GIVE_UP_HOURS=0)
    queue = batch_queue(factory)
    first = add_items(batch_app, queue.slug, TICKETS[:2], enqueue=False)
    costs = worst_cases(batch_app, first)
    set_budget(batch_app, queue.id, sum(costs) + costs[0] / 2)
    enqueue(batch_app, first)

    run_worker(batch_app)  # sent, never ends: written off at its first poll

    assert {i.ai_error[:14] for i in items_by_id(batch_app, first).values()} == {"batch_expired:"}
    [written_off] = batches(batch_app)
    assert written_off.status == "ended"
    budget = budget_of(batch_app, queue.id)
    assert budget.spent_usd == 0 and budget.reserved_usd == 0 and not budget.exhausted

    batch_app.config.update(AI_BATCH_GIVE_UP_HOURS=30)
    later = add_items(batch_app, queue.slug, TICKETS[:2], prefix="later")
    run_worker(batch_app)

    assert [sent_ids(p) for p in batch_posts(fake_anthropic)][1] == sorted(
        f"item-{i}" for i in later
    )
    assert {i.status for i in items_by_id(batch_app, later).values()} == {"pending"}


def test_a_batch_lost_past_its_give_up_time_holds_nothing(batch_app, factory, fake_anthropic):
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS[:2], enqueue=False)
    set_budget(batch_app, queue.id, 2 * sum(worst_cases(batch_app, ids)))
    enqueue(batch_app, ids)
    run_worker(batch_app)  # sent and still running
    [batch] = batches(batch_app)
    assert budget_of(batch_app, queue.id).reserved_usd > 0

    with batch_app.app_context():  # nobody polled it for 31 hours: it is lost
        session = db_session()
        session.get(AiBatch, batch.id).created_at = utcnow() - timedelta(hours=31)
        session.commit()

    assert budget_of(batch_app, queue.id).reserved_usd == 0
