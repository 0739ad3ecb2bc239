"""A worker SIGKILLed while a webhook delivery is in flight: the event is still delivered
(at least once, with the same X-Webhook-Id), and every other event too."""

from __future__ import annotations

import pytest

from tests.fakes.webhook_receiver import running_receiver
from tests.faults.conftest import kill_group, wait_for, worker_env
from tests.workers.webhook_helpers import add_decided_items, hooked_queue, outbox


@pytest.fixture
def receiver():
    yield from running_receiver()


@pytest.mark.slow
def test_a_delivery_cut_short_by_a_worker_kill_is_sent_again(
    app, factory, fake_anthropic, workers, receiver
):
    receiver.then("hang")  # the first delivery is held open until the worker is dead
    queue = hooked_queue(app, factory, receiver.url)
    env = worker_env(app, fake_anthropic) | {
        "WEBHOOK_TIMEOUT_SECONDS": "8",
        "WEBHOOK_RETRY_INTERVALS": "1,1,1",
    }
    first = workers(env)
    item_ids = add_decided_items(app, queue.slug, 5)  # auto-approved: 5 events enqueued

    # Generous waits: a worker takes a while to start on a loaded 2-core machine.
    wait_for(lambda: len(receiver.deliveries) == 1, 180, "the first delivery to arrive")
    kill_group(first)  # SIGKILL to the worker and its work horse, mid-delivery
    [cut_short] = receiver.ids()
    assert receiver.accepted() == []

    workers(env)
    wait_for(
        lambda: all(e.status == "delivered" for e in outbox(app)),
        240,
        "every event to be delivered",
    )

    events = outbox(app)
    assert sorted(e.item_id for e in events) == sorted(item_ids)  # one event per decision
    assert {d.event_id for d in receiver.accepted()} == {e.event_id for e in events}
    assert receiver.ids().count(cut_short) >= 2  # sent again, under the same id
    assert all(d.signature_ok for d in receiver.deliveries)
