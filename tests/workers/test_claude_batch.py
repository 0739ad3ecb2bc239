"""Claude in batch mode, end to end: real worker, real SDK, the fake's Message Batches API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from models import AiBatch, AiCall, Queue
from review.db import db_session
from review.domain.pricing import PRICES
from review.redis_conn import get_redis, get_rq_queue
from review.services import pipeline
from review.services.ai_settings import DEFAULT_CLAUDE_MODEL
from tests.workers.claude_helpers import claude_queue
from tests.workers.helpers import add_items, items_by_id, run_worker
from workers import claude_batch
from workers.sweeper import sweep_once

TICKETS = [
    {"subject": "Charged twice", "body": "I paid twice, please refund. Mail jane@example.com"},
    {"subject": "App crashes", "body": "The export button crashes the app every time."},
    {"subject": "WIN A PRIZE", "body": "Click here to claim your crypto prize now."},
    {"subject": "Refund please", "body": "Order A-17 arrived broken, please refund it."},
]


@pytest.fixture
def batch_app(claude_app):
    """Batches sent at once and polled at once (a batch still running is polled again
    a second later, which a burst worker leaves to the test)."""
    claude_app.config.update(AI_BATCH_COLLECT_SECONDS=0, AI_BATCH_POLL_SECONDS=0)
    return claude_app


def batch_queue(factory, **recommender):
    return claude_queue(factory, batch=True, **recommender)


def batches(app) -> list[AiBatch]:
    with app.app_context():
        session = db_session()
        rows = list(session.scalars(select(AiBatch).order_by(AiBatch.id)))
        session.expunge_all()
        return rows


def ledger(app) -> list[AiCall]:
    with app.app_context():
        session = db_session()
        rows = list(session.scalars(select(AiCall).order_by(AiCall.id)))
        session.expunge_all()
        return rows


def batch_posts(fake) -> list[dict]:
    return [r["body"] for r in fake.requests if r["path"] == "/v1/messages/batches"]


def enqueue(app, ids) -> None:
    with app.app_context():
        assert pipeline.enqueue_recommendations(get_rq_queue(), ids)


def test_a_batch_queue_sends_one_batch_and_attaches_every_answer_at_half_price(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    fake_anthropic.answer = {"label": "refund", "confidence": 0.9, "evidence": ["please refund"]}
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS)

    run_worker(batch_app)

    assert fake_anthropic.message_requests() == []  # no call one item at a time
    [post] = batch_posts(fake_anthropic)
    assert sorted(r["custom_id"] for r in post["requests"]) == sorted(f"item-{i}" for i in ids)
    assert "jane@example.com" not in json.dumps(post)  # redacted as in a single call
    items = items_by_id(batch_app, ids)
    assert {i.ai_status for i in items.values()} == {"ok"}
    calls = ledger(batch_app)
    assert len(calls) == len(ids) and {c.mode for c in calls} == {"batch"}
    price = PRICES[DEFAULT_CLAUDE_MODEL]
    for call in calls:
        full_price = (
            call.input_tokens * price.input_per_mtok
            + call.cache_write_tokens * price.cache_write_per_mtok
            + call.cache_read_tokens * price.cache_read_per_mtok
            + call.output_tokens * price.output_per_mtok
        ) / 1e6
        assert call.cost_usd == pytest.approx(full_price / 2)
        rec = items[call.item_id].recommendation
        assert rec.cost_usd == pytest.approx(call.cost_usd)
        assert rec.source == "claude" and rec.label == "refund" and rec.confidence == 0.9
        assert rec.model_version.startswith("claude-prompt-v1+")
        assert rec.input_tokens == call.input_tokens + call.cache_write_tokens
        assert rec.output_tokens > 0
    first = items[ids[0]].recommendation
    assert first.evidence == ["please refund"]
    assert "[EMAIL]" in first.prompt_redacted and "jane@example.com" not in first.prompt_redacted
    [batch] = batches(batch_app)
    assert batch.status == "ended" and batch.error is None


def test_errored_expired_and_canceled_requests_go_to_people_with_the_reason(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    queue = batch_queue(factory)
    ok, errored, expired, canceled = add_items(batch_app, queue.slug, TICKETS, enqueue=False)
    fake_anthropic.batch_outcomes = {
        f"item-{errored}": "invalid_request",  # no retry can fix it: no second attempt
        f"item-{expired}": "expired",
        f"item-{canceled}": "canceled",
    }
    enqueue(batch_app, [ok, errored, expired, canceled])

    run_worker(batch_app)

    items = items_by_id(batch_app, [ok, errored, expired, canceled])
    assert items[ok].ai_status == "ok" and items[ok].recommendation is not None
    for item_id in (errored, expired, canceled):
        assert items[item_id].status == "needs_review"
        assert items[item_id].ai_status == "unavailable"
        assert items[item_id].recommendation is None
    assert items[errored].ai_error == (
        "batch_errored: invalid_request_error: max_tokens: must be at most 8192."
    )
    assert items[expired].ai_error.startswith("batch_expired:")
    assert items[canceled].ai_error.startswith("batch_canceled:")
    assert [c.item_id for c in ledger(batch_app)] == [ok]  # only answered requests are billed
    [batch] = batches(batch_app)
    assert batch.status == "ended" and batch.error == "1 canceled, 1 errored, 1 expired"
    assert len(batch_posts(fake_anthropic)) == 1


def test_a_request_that_errors_once_gets_its_answer_from_the_next_batch(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    queue = batch_queue(factory)
    ok, flaky = add_items(batch_app, queue.slug, TICKETS[:2], enqueue=False)
    fake_anthropic.batch_outcomes = {f"item-{flaky}": ["overloaded", "ok"]}
    enqueue(batch_app, [ok, flaky])

    run_worker(batch_app)

    first, second = batch_posts(fake_anthropic)
    assert {r["custom_id"] for r in first["requests"]} == {f"item-{ok}", f"item-{flaky}"}
    assert [r["custom_id"] for r in second["requests"]] == [f"item-{flaky}"]
    sent_first, sent_again = batches(batch_app)
    assert sent_first.error == "1 batch_retry"
    assert sent_again.requests[f"item-{flaky}"]["attempt"] == 2 and sent_again.error is None
    items = items_by_id(batch_app, [ok, flaky])
    assert {i.ai_status for i in items.values()} == {"ok"}
    assert items[flaky].recommendation is not None
    assert sorted(c.item_id for c in ledger(batch_app)) == [ok, flaky]  # billed once each


def test_a_retry_that_redis_refused_is_found_by_the_sweeper_and_answered(
    batch_app, factory, fake_anthropic, monkeypatch
):
    """Nothing is lost when the retry cannot be enqueued: the item stays pending, marked
    for its second attempt, until the sweeper hands it on."""
    fake_anthropic.batches_end_immediately = True
    queue = batch_queue(factory)
    (flaky,) = add_items(batch_app, queue.slug, TICKETS[:1], enqueue=False)
    fake_anthropic.batch_outcomes = {f"item-{flaky}": ["overloaded", "ok"]}
    enqueue(batch_app, [flaky])
    monkeypatch.setattr(pipeline, "enqueue_recommendations", lambda *_args: False)

    run_worker(batch_app)

    assert len(batch_posts(fake_anthropic)) == 1
    waiting = items_by_id(batch_app, [flaky])[flaky]
    assert (waiting.status, waiting.ai_status) == ("pending", claude_batch.RETRYING)
    monkeypatch.undo()
    assert sweep(batch_app) == 1
    run_worker(batch_app)

    assert len(batch_posts(fake_anthropic)) == 2
    answered = items_by_id(batch_app, [flaky])[flaky]
    assert answered.ai_status == "ok" and answered.recommendation is not None


def test_a_request_that_errors_twice_goes_to_people_after_its_second_attempt(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    queue = batch_queue(factory)
    [broken] = add_items(batch_app, queue.slug, TICKETS[:1], enqueue=False)
    fake_anthropic.batch_outcomes = {f"item-{broken}": "errored"}
    enqueue(batch_app, [broken])

    run_worker(batch_app)

    item = items_by_id(batch_app, [broken])[broken]
    assert item.status == "needs_review" and item.ai_status == "unavailable"
    assert item.ai_error == "batch_errored: api_error: Internal server error. (attempt 2 of 2)"
    assert len(batch_posts(fake_anthropic)) == 2
    assert [b.error for b in batches(batch_app)] == ["1 batch_retry", "1 errored"]
    assert ledger(batch_app) == []


def test_a_request_that_errored_is_retried_by_a_single_call_once_batches_are_off(
    batch_app, factory, fake_anthropic
):
    queue = batch_queue(factory)
    [flaky] = add_items(batch_app, queue.slug, TICKETS[:1], enqueue=False)
    fake_anthropic.batch_outcomes = {f"item-{flaky}": "overloaded"}
    enqueue(batch_app, [flaky])
    run_worker(batch_app)  # sent; the batch is still running
    with batch_app.app_context():
        session = db_session()
        session.get(Queue, queue.id).ai_batch = False
        session.commit()
    fake_anthropic.end_batches()
    [batch] = batches(batch_app)

    with batch_app.app_context():
        token = get_redis().get(claude_batch.poll_key(batch.id)).decode()
        assert claude_batch.poll_batch(batch.id, token) == "ended"
    item = items_by_id(batch_app, [flaky])[flaky]
    assert item.status == "pending" and item.ai_status == "batch_retry"
    assert item.ai_error == "batch_errored: overloaded_error: Overloaded. (attempt 1 of 2)"
    run_worker(batch_app)

    item = items_by_id(batch_app, [flaky])[flaky]
    assert item.ai_status == "ok" and item.recommendation is not None
    assert len(fake_anthropic.message_requests()) == 1
    assert len(batch_posts(fake_anthropic)) == 1


def test_invalid_answers_in_a_batch_are_failures_not_recommendations(
    batch_app, factory, fake_anthropic
):
    fake_anthropic.batches_end_immediately = True
    fake_anthropic.answer = {"confidence": 1.7}
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS[:2])

    run_worker(batch_app)

    items = items_by_id(batch_app, ids)
    assert all(i.ai_error.startswith("bad_confidence:") for i in items.values())
    assert {c.outcome for c in ledger(batch_app)} == {"bad_confidence"}  # billed all the same


def test_a_batch_that_never_ends_is_written_off_and_its_items_go_to_people(
    batch_app, factory, fake_anthropic
):
    batch_app.config.update(AI_BATCH_GIVE_UP_HOURS=0)
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS[:2])

    run_worker(batch_app)

    items = items_by_id(batch_app, ids)
    assert {i.status for i in items.values()} == {"needs_review"}
    assert all(i.ai_error.startswith("batch_expired:") for i in items.values())
    [batch] = batches(batch_app)
    assert batch.status == "ended" and batch.error.startswith("batch_expired")


def test_polling_twice_attaches_and_bills_nothing_twice(batch_app, factory, fake_anthropic):
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS)
    run_worker(batch_app)  # sent; the batch is still running
    assert {i.status for i in items_by_id(batch_app, ids).values()} == {"pending"}
    [batch] = batches(batch_app)
    fake_anthropic.end_batches()

    with batch_app.app_context():
        token = get_redis().get(claude_batch.poll_key(batch.id)).decode()
        assert claude_batch.poll_batch(batch.id, token) == "ended"
        assert claude_batch.poll_batch(batch.id, token) == "done"
        assert claude_batch.poll_batch(batch.id, "another-chain") == "done"

    items = items_by_id(batch_app, ids)
    assert {i.ai_status for i in items.values()} == {"ok"}
    assert len(ledger(batch_app)) == len(ids)
    assert len(batch_posts(fake_anthropic)) == 1


def queued_jobs(app) -> list[str]:
    with app.app_context():
        return [job.func_name for job in get_rq_queue().get_jobs()]


def sweep(app, older_than_seconds: float = 0) -> int:
    with app.app_context():
        return sweep_once(db_session(), get_rq_queue(), older_than_seconds=older_than_seconds)


def test_a_batch_whose_poll_job_was_lost_is_found_again_and_not_sent_twice(
    batch_app, factory, fake_anthropic
):
    """The worker died after sending the batch and Redis lost every job and key: the
    batch is only in the database. The sweeper leaves its items alone and polls it again."""
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS)
    run_worker(batch_app)
    assert len(batches(batch_app)) == 1
    with batch_app.app_context():
        get_redis().flushdb()  # the scheduled poll, the claims and the locks are gone

    assert sweep(batch_app) == 0  # still running: the items wait, nothing is resent
    assert queued_jobs(batch_app) == [claude_batch.POLL_JOB]
    run_worker(batch_app)
    assert {i.status for i in items_by_id(batch_app, ids).values()} == {"pending"}

    fake_anthropic.end_batches()
    with batch_app.app_context():
        get_redis().flushdb()
    assert sweep(batch_app) == 0
    run_worker(batch_app)

    items = items_by_id(batch_app, ids)
    assert {i.ai_status for i in items.values()} == {"ok"}
    assert len(batch_posts(fake_anthropic)) == 1
    assert len(ledger(batch_app)) == len(ids)


def test_sweeps_leave_the_items_of_running_batches_alone_and_rescue_the_rest(
    batch_app, factory, fake_anthropic
):
    queue = batch_queue(factory)
    first = add_items(batch_app, queue.slug, TICKETS[:2])
    run_worker(batch_app)  # sent; its poll chain waits for its next poll
    never_batched = add_items(batch_app, queue.slug, TICKETS[2:], prefix="late", enqueue=False)

    assert sweep(batch_app) == len(never_batched)  # only the items no batch holds
    run_worker(batch_app)  # they go out in a batch of their own
    for _ in range(3):
        assert sweep(batch_app) == 0
        assert queued_jobs(batch_app) == []  # both poll chains are alive: nothing to do

    posts = batch_posts(fake_anthropic)
    assert [sorted(r["custom_id"] for r in p["requests"]) for p in posts] == [
        sorted(f"item-{i}" for i in first),
        sorted(f"item-{i}" for i in never_batched),
    ]
    fake_anthropic.end_batches()
    with batch_app.app_context():
        for batch in batches(batch_app):
            token = get_redis().get(claude_batch.poll_key(batch.id)).decode()
            assert claude_batch.poll_batch(batch.id, token) == "ended"
    items = items_by_id(batch_app, first + never_batched)
    assert {i.ai_status for i in items.values()} == {"ok"}


def test_items_of_a_lost_batch_past_its_give_up_time_are_swept_and_go_to_people(
    batch_app, factory, fake_anthropic
):
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS[:2])
    run_worker(batch_app)  # sent, never ends
    with batch_app.app_context():
        get_redis().flushdb()  # and its poll is lost
    batch_app.config.update(AI_BATCH_GIVE_UP_HOURS=0)

    assert sweep(batch_app) == len(ids)
    run_worker(batch_app)

    items = items_by_id(batch_app, ids)
    assert {i.status for i in items.values()} == {"needs_review"}
    assert all(i.ai_error.startswith("batch_expired:") for i in items.values())
    [batch] = batches(batch_app)
    assert batch.status == "ended"
    assert len(batch_posts(fake_anthropic)) == 1


def test_items_arriving_while_a_batch_runs_go_in_the_next_batch(batch_app, factory, fake_anthropic):
    queue = batch_queue(factory)
    first = add_items(batch_app, queue.slug, TICKETS[:2])
    run_worker(batch_app)
    later = add_items(batch_app, queue.slug, TICKETS[2:], prefix="later")
    run_worker(batch_app)

    posts = batch_posts(fake_anthropic)
    assert [sorted(r["custom_id"] for r in p["requests"]) for p in posts] == [
        sorted(f"item-{i}" for i in first),
        sorted(f"item-{i}" for i in later),
    ]
    fake_anthropic.end_batches()
    with batch_app.app_context():
        for batch in batches(batch_app):
            token = get_redis().get(claude_batch.poll_key(batch.id)).decode()
            assert claude_batch.poll_batch(batch.id, token) == "ended"
    assert {i.ai_status for i in items_by_id(batch_app, first + later).values()} == {"ok"}


def test_a_batch_refused_by_the_provider_sends_its_items_to_people(
    batch_app, factory, fake_anthropic
):
    batch_app.config.update(ANTHROPIC_API_KEY=None)
    queue = batch_queue(factory)
    ids = add_items(batch_app, queue.slug, TICKETS[:2])

    run_worker(batch_app)

    items = items_by_id(batch_app, ids)
    assert all(i.ai_error.startswith("not_configured") for i in items.values())
    assert batch_posts(fake_anthropic) == []
