"""The Claude recommender, end to end: real worker, real SDK, fake Messages API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from models import AiCall
from review.db import db_session
from review.domain.pricing import PRICES
from review.services import ai_budget, queues
from review.services.ai_settings import DEFAULT_CLAUDE_MODEL
from tests.workers.claude_helpers import claude_queue
from tests.workers.helpers import add_items, items_by_id, run_worker

TICKET = {
    "subject": "Charged twice",
    "body": "I paid twice for order A-17, please refund one charge. Call me on +44 20 7946 0958.",
    "email": "jane.doe@example.com",
}


def ledger(app):
    with app.app_context():
        return list(db_session().scalars(select(AiCall).order_by(AiCall.id)))


def test_a_valid_answer_becomes_a_recommendation_with_tokens_cost_and_evidence(
    claude_app, factory, fake_anthropic
):
    queue = claude_queue(factory)
    fake_anthropic.answer = {
        "label": "refund",
        "confidence": 0.91,
        "evidence": ["please refund one charge", "words never written"],
    }
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    rec = item.recommendation
    assert item.ai_status == "ok" and item.status == "needs_review"
    assert (rec.source, rec.model, rec.label, rec.confidence) == (
        "claude",
        DEFAULT_CLAUDE_MODEL,
        "refund",
        0.91,
    )
    assert rec.model_version.startswith("claude-prompt-v1+")
    assert rec.rationale
    # Quotes the item does not contain are never shown as evidence.
    assert rec.evidence == ["please refund one charge"]
    assert rec.input_tokens > 0 and rec.output_tokens > 0 and rec.latency_ms > 0
    [call] = ledger(claude_app)
    price = PRICES[DEFAULT_CLAUDE_MODEL]
    assert call.cache_write_tokens > 0  # the first call writes the static prompt's cache
    expected = (
        call.input_tokens * price.input_per_mtok
        + call.cache_write_tokens * price.cache_write_per_mtok
        + call.output_tokens * price.output_per_mtok
    ) / 1e6
    assert call.outcome == "ok"
    assert rec.cost_usd == pytest.approx(expected) == pytest.approx(call.cost_usd)
    assert rec.input_tokens == call.input_tokens + call.cache_write_tokens


def test_the_second_call_reads_the_static_prompt_from_the_cache(claude_app, factory):
    queue = claude_queue(factory)
    add_items(claude_app, queue.slug, [TICKET])
    run_worker(claude_app)
    [second] = add_items(claude_app, queue.slug, [TICKET | {"n": 2}], prefix="second")
    run_worker(claude_app)
    rec = items_by_id(claude_app, [second])[second].recommendation
    assert rec.cache_read_tokens > 0


def test_the_prompt_is_redacted_cached_and_structured(claude_app, factory, fake_anthropic):
    queue = claude_queue(factory, redact_patterns=[r"A-\d+"])
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    [request] = fake_anthropic.message_requests()
    body = request["body"]
    sent = json.dumps(body)
    for secret in ("jane.doe@example.com", "7946 0958", "A-17"):
        assert secret not in sent
    assert "[EMAIL]" in sent and "[PHONE]" in sent and "[REDACTED]" in sent
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "Refunds for double charges" in body["system"][0]["text"]
    schema = body["output_config"]["format"]["schema"]
    assert schema["properties"]["label"]["enum"] == ["refund", "bug_report", "spam"]
    assert request["headers"].get("x-stainless-retry-count") in (None, "0")
    rec = items_by_id(claude_app, [item_id])[item_id].recommendation
    assert rec.prompt_redacted is not None and "[EMAIL]" in rec.prompt_redacted
    assert "jane.doe@example.com" not in rec.prompt_redacted


def test_redaction_can_be_turned_off_per_queue(claude_app, factory, fake_anthropic):
    queue = claude_queue(factory, redact=False)
    add_items(claude_app, queue.slug, [TICKET])
    run_worker(claude_app)
    assert "jane.doe@example.com" in json.dumps(fake_anthropic.message_requests()[0]["body"])


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        ("invalid_json", "invalid_json"),
        ("bad_confidence", "bad_confidence"),
        ("unknown_label", "unknown_label"),
        ("refusal", "refusal"),
        ("truncated", "truncated"),
    ],
)
def test_unusable_answers_go_to_people_without_retry(
    claude_app, factory, fake_anthropic, behaviour, kind
):
    queue = claude_queue(factory)
    fake_anthropic.then(behaviour)
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    assert item.status == "needs_review" and item.recommendation is None
    assert item.ai_status == "unavailable" and item.ai_error.startswith(f"{kind}:")
    assert len(fake_anthropic.message_requests()) == 1
    [call] = ledger(claude_app)  # it was billed all the same
    assert call.outcome == kind and call.cost_usd > 0


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limited"), (529, "overloaded"), (500, "server_error")]
)
def test_transient_errors_are_retried_by_rq_and_then_succeed(
    claude_app, factory, fake_anthropic, status, kind
):
    queue = claude_queue(factory)
    fake_anthropic.then(status, status)
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    assert item.ai_status == "ok" and item.recommendation.label == "refund"
    # Three HTTP requests: the SDK did not retry on its own, RQ ran the job three times.
    assert len(fake_anthropic.message_requests()) == 3


def test_when_retries_run_out_the_item_goes_to_people_marked_unavailable(
    claude_app, factory, fake_anthropic
):
    queue = claude_queue(factory)
    fake_anthropic.default = 529
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    assert item.status == "needs_review" and item.ai_status == "unavailable"
    assert item.ai_error.startswith("overloaded: HTTP 529")
    assert len(fake_anthropic.message_requests()) == 4  # first try and three retries


def test_a_slow_answer_times_out_and_is_retried(claude_app, factory, fake_anthropic):
    queue = claude_queue(factory)
    fake_anthropic.slow_seconds = 3
    fake_anthropic.then("slow")
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    assert item.ai_status == "ok"
    assert len(fake_anthropic.message_requests()) == 2


def test_a_request_that_cannot_succeed_is_not_retried(claude_app, factory, fake_anthropic):
    queue = claude_queue(factory)
    fake_anthropic.then(400)
    [item_id] = add_items(claude_app, queue.slug, [TICKET])

    run_worker(claude_app)

    item = items_by_id(claude_app, [item_id])[item_id]
    assert item.ai_status == "unavailable" and item.ai_error.startswith("http_400:")
    assert len(fake_anthropic.message_requests()) == 1


def test_the_breaker_opens_and_sends_items_straight_to_people(claude_app, factory, fake_anthropic):
    claude_app.config.update(AI_BREAKER_FAILURES=2, AI_RETRY_INTERVALS=[])
    queue = claude_queue(factory)
    fake_anthropic.default = 529
    first = add_items(claude_app, queue.slug, [TICKET, TICKET | {"subject": "again"}])
    run_worker(claude_app)
    assert len(fake_anthropic.message_requests()) == 2

    later = add_items(claude_app, queue.slug, [TICKET | {"n": i} for i in range(5)], prefix="l")
    run_worker(claude_app)

    assert len(fake_anthropic.message_requests()) == 2  # no call while the circuit is open
    items = items_by_id(claude_app, first + later)
    assert {i.status for i in items.values()} == {"needs_review"}
    assert all(items[i].ai_error.startswith("circuit_open") for i in later)


def test_a_successful_probe_closes_the_breaker(claude_app, factory, fake_anthropic):
    claude_app.config.update(
        AI_BREAKER_FAILURES=1, AI_BREAKER_COOLDOWN_SECONDS=0.2, AI_RETRY_INTERVALS=[]
    )
    queue = claude_queue(factory)
    fake_anthropic.then(529)
    add_items(claude_app, queue.slug, [TICKET])
    run_worker(claude_app)
    import time

    time.sleep(0.3)  # the cooldown passes: the next call is the probe
    ids = add_items(claude_app, queue.slug, [TICKET | {"n": 1}], prefix="p")
    run_worker(claude_app)
    more = add_items(claude_app, queue.slug, [TICKET | {"n": 2}], prefix="q")
    run_worker(claude_app)

    items = items_by_id(claude_app, ids + more)
    assert {i.ai_status for i in items.values()} == {"ok"}


def test_a_spent_budget_sends_items_to_people_marked_budget_exhausted(
    claude_app, factory, fake_anthropic
):
    queue = claude_queue(factory, daily_budget_usd=0.00001)
    [first] = add_items(claude_app, queue.slug, [TICKET])
    run_worker(claude_app)
    assert items_by_id(claude_app, [first])[first].ai_status == "ok"

    later = add_items(claude_app, queue.slug, [TICKET | {"n": 2}], prefix="b")
    run_worker(claude_app)

    item = items_by_id(claude_app, later)[later[0]]
    assert item.status == "needs_review" and item.ai_status == "budget_exhausted"
    assert len(fake_anthropic.message_requests()) == 1
    with claude_app.app_context():
        session = db_session()
        status = ai_budget.status(session, queues.get_queue(session, queue.slug))
    assert status.exhausted and status.spent_usd > 0.00001 and status.remaining_usd == 0


def test_without_an_api_key_claude_items_go_to_people(app, factory):
    queue = claude_queue(factory)
    [item_id] = add_items(app, queue.slug, [TICKET])
    run_worker(app)
    item = items_by_id(app, [item_id])[item_id]
    assert item.ai_status == "unavailable" and item.ai_error.startswith("not_configured")


def test_a_budget_on_a_model_without_a_price_is_refused(app, factory):
    with pytest.raises(Exception, match="invalid queue") as info:
        claude_queue(factory, model="claude-sonnet-5", daily_budget_usd=5)
    assert "recommender.daily_budget_usd" in info.value.fields


def test_the_api_shows_the_claude_recommendation_and_the_failure_kind(
    claude_app, factory, fake_anthropic
):
    queue = claude_queue(factory)
    fake_anthropic.answer = {"evidence": ["paid twice"]}
    fake_anthropic.then("ok", 529, 529, 529, 529)
    ok_id, failed_id = add_items(claude_app, queue.slug, [TICKET, TICKET | {"n": 1}])
    run_worker(claude_app)
    token = factory.token(factory.user("admin"))
    client = claude_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    ok = client.get(f"/api/v1/items/{ok_id}", headers=headers).get_json()
    failed = client.get(f"/api/v1/items/{failed_id}", headers=headers).get_json()

    assert ok["ai_status"] == "ok"
    rec = ok["recommendation"]
    assert rec["source"] == "claude" and rec["rationale"] and rec["cost_usd"] > 0
    assert rec["evidence"] == ["paid twice"] and rec["model_version"].startswith("claude-prompt")
    assert failed["ai_status"] == "unavailable" and failed["recommendation"] is None
    assert failed["ai_error"].startswith("overloaded")
