"""Overrides teach Claude: similar past decisions, overrides first, go into the prompt."""

from __future__ import annotations

from review.db import db_session
from review.domain.text import payload_document
from review.services import queues
from review.services.few_shot import similar_decisions
from tests.workers.claude_helpers import claude_queue
from tests.workers.helpers import add_items, decide_as_truth, run_worker


def test_similar_overrides_come_first_and_reach_the_prompt(claude_app, factory, fake_anthropic):
    queue = claude_queue(factory)
    fake_anthropic.answer = {"label": "refund", "confidence": 0.6}
    payloads = [
        {"body": "charged twice for my subscription renewal"},
        {"body": "charged twice after renewal, card statement shows two"},
        {"body": "buy cheap watches now"},
        {"body": "the export button crashes"},
    ]
    ids = add_items(claude_app, queue.slug, payloads)
    run_worker(claude_app)  # Claude says "refund" for all
    # People: the first is a refund; the second was really a bug (an override).
    decide_as_truth(
        claude_app,
        factory.user(),
        dict(zip(ids, ["refund", "bug_report", "spam", "bug_report"], strict=True)),
    )

    new = {"body": "renewal charged twice again"}
    with claude_app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        examples = similar_decisions(session, q.id, payload_document(new), max_examples=2)
    assert [(e.label, e.overridden) for e in examples] == [("bug_report", True), ("refund", False)]

    fake_anthropic.requests.clear()
    add_items(claude_app, queue.slug, [new], prefix="new")
    run_worker(claude_app)
    prompt = fake_anthropic.message_requests()[0]["body"]["messages"][0]["content"][0]["text"]
    assert "card statement shows two" in prompt
    assert "Label: bug_report (the AI said refund; a person corrected it)" in prompt
    assert prompt.index("bug_report") < prompt.index("Label: refund")


def test_the_example_count_is_capped(claude_app, factory):
    queue = claude_queue(factory)
    ids = add_items(claude_app, queue.slug, [{"body": f"refund order {n}"} for n in range(12)])
    run_worker(claude_app)
    decide_as_truth(claude_app, factory.user(), dict.fromkeys(ids, "refund"))
    with claude_app.app_context():
        session = db_session()
        q = queues.get_queue(session, queue.slug)
        assert len(similar_decisions(session, q.id, "refund order", max_examples=5)) == 5
        assert len(similar_decisions(session, q.id, "refund order", max_tokens=10)) <= 2
