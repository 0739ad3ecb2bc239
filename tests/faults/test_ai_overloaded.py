"""The AI answers 529 (overloaded) for a while, compressed from a minute by config: every
item still ends routed once, decisions are delivered, and the AI is used again after."""

from __future__ import annotations

import time

import pytest

from tests.fakes.webhook_receiver import running_receiver
from tests.faults.conftest import wait_for, worker_env
from tests.faults.settled import all_delivered, assert_settled, decide_waiting, none_pending
from tests.workers.helpers import add_items, items_by_id
from tests.workers.webhook_helpers import hooked_queue

OUTAGE_SECONDS = 12
COOLDOWN_SECONDS = 4


@pytest.fixture
def receiver():
    yield from running_receiver()


@pytest.mark.slow
def test_an_overloaded_ai_loses_nothing_and_is_used_again_after(
    app, factory, fake_anthropic, workers, receiver
):
    fake_anthropic.default = 529
    queue = hooked_queue(
        app,
        factory,
        receiver.url,
        labels=["refund", "bug_report", "spam"],
        recommender={"kind": "claude"},
    )
    reviewer = factory.user("reviewer")
    factory.member(queue, reviewer)
    workers(
        worker_env(app, fake_anthropic)
        | {
            "AI_RETRY_INTERVALS": "1,2,4",
            "AI_BREAKER_FAILURES": "5",
            "AI_BREAKER_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS),
            "WEBHOOK_TIMEOUT_SECONDS": "5",
            "WEBHOOK_RETRY_INTERVALS": "1,1,1",
        }
    )
    during = add_items(app, queue.slug, [{"body": f"refund {n}"} for n in range(12)], prefix="d")

    wait_for(lambda: len(fake_anthropic.message_requests()) > 0, 180, "the first AI call")
    time.sleep(OUTAGE_SECONDS)  # the outage lasts; the workers keep trying, then give up
    fake_anthropic.default = "ok"  # confidence 0.93: auto-approved under the 0.9 policy
    wait_for(lambda: none_pending(app, queue.id), 240, "the outage's items to be routed")
    time.sleep(COOLDOWN_SECONDS + 1)  # the circuit half-opens; the next call probes it

    after = add_items(app, queue.slug, [{"body": f"bug {n}"} for n in range(4)], prefix="a")
    wait_for(lambda: none_pending(app, queue.id), 240, "the later items to be routed")
    assert any(i.ai_status == "ok" for i in items_by_id(app, after).values())
    routed_during = items_by_id(app, during).values()
    assert {i.ai_status for i in routed_during} <= {"ok", "unavailable"}
    assert any(i.ai_status == "unavailable" for i in routed_during)

    decide_waiting(app, queue.id, reviewer)  # people decide what the AI could not
    wait_for(lambda: all_delivered(app), 240, "every decision to reach the webhook")
    external_ids = [f"d-{n}" for n in range(12)] + [f"a-{n}" for n in range(4)]
    assert_settled(app, queue.id, external_ids, receiver)
