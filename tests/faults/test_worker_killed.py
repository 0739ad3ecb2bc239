"""A worker SIGKILLed in the middle of a Claude call: the item still ends routed."""

from __future__ import annotations

import pytest

from tests.faults.conftest import kill_group, wait_for, worker_env
from tests.workers.claude_helpers import claude_queue
from tests.workers.helpers import add_items, items_by_id


@pytest.mark.slow
def test_an_item_whose_worker_was_killed_mid_call_is_routed(app, factory, fake_anthropic, workers):
    fake_anthropic.slow_seconds = 30
    fake_anthropic.then("slow")  # the first call hangs until the worker is dead
    queue = claude_queue(factory)
    env = worker_env(app, fake_anthropic)
    first = workers(env)
    [item_id] = add_items(app, queue.slug, [{"subject": "refund please", "body": "paid twice"}])

    # A worker process takes a while to start on a loaded 2-core machine (it imports
    # scikit-learn and the SDK), so the waits are generous; the fault itself is not timed.
    wait_for(lambda: len(fake_anthropic.message_requests()) == 1, 180, "the call to start")
    kill_group(first)  # SIGKILL to the worker and its work horse, mid-call
    assert items_by_id(app, [item_id])[item_id].status == "pending"

    workers(env)
    wait_for(
        lambda: items_by_id(app, [item_id])[item_id].status != "pending",
        240,
        "the item to be routed",
    )

    item = items_by_id(app, [item_id])[item_id]
    assert item.status == "needs_review" and item.ai_status == "ok"
    assert item.recommendation.source == "claude"
    assert len(item.routings) == 1  # routed once, not once per attempt
