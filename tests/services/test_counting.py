"""Queue counts: exact and live up to a cap, then an estimate (PostgreSQL) or "cap+"."""

import re

import pytest
from sqlalchemy import bindparam, select, text, update
from werkzeug.datastructures import MultiDict

from models import Item
from models.base import utcnow
from review.db import db_session
from review.services import counting, queue_views, queues
from review.services.counting import CappedCounts, Count, capped_count, round_estimate
from tests.conftest import login
from tests.services.test_reviewing import claim, decide
from tests.web.ui_helpers import add_items, reviewer_in


def counts_of(app, slug, args=None):
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        filters = queue_views.parse_filters(MultiDict(args or {}), queue)
        return queue_views.queue_counts(session, queue, filters, utcnow())


def analyze(app):
    """Refresh PostgreSQL's statistics, as autovacuum does; SQLite has none to refresh."""
    with app.app_context():
        session = db_session()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE items"))
            session.commit()
        return session.get_bind().dialect.name


def test_counts_below_the_cap_are_exact_and_follow_each_decision(app, factory):
    factory.queue("q")
    reviewer = factory.user()
    add_items(app, "q", 4, label="reject")
    add_items(app, "q", 2, prefix="raw", with_recommendation=False)  # waits for the AI

    before = counts_of(app, "q", {"label": "reject"})
    assert (before.needs_review, before.pending, before.matching) == (Count(4), Count(2), Count(4))
    assert before.needs_review.exact and str(before.needs_review) == "4"

    decide(app, claim(app, "q", reviewer.id), reviewer.id, {"action": "approve"})
    after = counts_of(app, "q", {"label": "reject"})
    assert (after.needs_review, after.matching, after.in_review) == (Count(3), Count(3), Count(0))


def test_beyond_the_cap_the_count_is_estimated_or_shown_as_at_least(app, factory, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_CAP", 10)
    factory.queue("q")
    add_items(app, "q", 40)
    add_items(app, "q", 3, prefix="few", label="reject")
    backend = analyze(app)

    counts = counts_of(app, "q", {"label": "reject"})
    assert counts.matching == Count(3)  # a small filter stays exact
    waiting = counts.needs_review
    if backend == "postgresql":
        assert waiting.kind == "estimate"
        assert 20 <= waiting.value <= 90  # the planner's estimate of 43 rows
        assert str(waiting) == f"about {waiting.value:,}"
    else:
        assert waiting == Count(10, "at_least")
        assert str(waiting) == "10+"
    assert not waiting.exact


@pytest.mark.parametrize(
    "value, shown",
    [
        (7, 7),
        (99, 99),
        (1234, 1200),
        (12_345, 12_000),
        (998_765, 1_000_000),
        (1_049_999, 1_000_000),
    ],
)
def test_estimates_keep_two_significant_digits(value, shown):
    assert round_estimate(value) == shown


def test_the_counts_fragment_says_when_a_count_is_not_exact(app, client, factory, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_CAP", 2)
    queue = factory.queue("q")
    reviewer_in(factory, queue, email="rev@example.com")
    add_items(app, "q", 6)
    analyze(app)
    login(client, "rev@example.com")

    html = client.get("/queues/q/counts").text
    shown = re.search(r'data-count="needs_review" title="([^"]+)">([^<]+)<', html)
    assert shown, html
    assert "counts are exact up to 2" in shown.group(1)
    assert re.fullmatch(r"about \d+|2\+", shown.group(2))
    assert re.search(r'data-count="in_review">0<', html)  # exact counts carry no title


def test_counts_in_one_statement_agree_with_counting_each_alone(app, factory, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_CAP", 10)
    factory.queue("q")
    add_items(app, "q", 40)
    add_items(app, "q", 3, prefix="few", label="reject")
    analyze(app)
    in_queue = select(Item.id).where(Item.queue_id == bindparam("b_queue"))
    by_label = in_queue.where(Item.ai_label == bindparam("b_label"))
    counter = CappedCounts(everything=in_queue, labelled=by_label)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        for label in ("reject", "approve", "spam"):
            together = counter.run(session, {"b_queue": queue.id, "b_label": label})
            alone = {
                "everything": capped_count(session, select(Item.id).filter_by(queue_id=queue.id)),
                "labelled": capped_count(
                    session, select(Item.id).filter_by(queue_id=queue.id, ai_label=label)
                ),
            }
            assert together == alone


def test_an_estimate_beyond_the_cap_binds_the_filter_values(app, factory, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_CAP", 10)
    factory.queue("q")
    add_items(app, "q", 30, with_recommendation=False)
    with app.app_context():
        session = db_session()
        session.execute(update(Item).values(status="needs_review", ai_status="unavailable"))
        session.commit()
    backend = analyze(app)
    counts = counts_of(app, "q", {"no_rec": "1"})  # a status list: IN (...) in the EXPLAIN
    if backend == "postgresql":
        assert counts.matching.kind == "estimate" and counts.matching.value >= 20
    else:
        assert counts.matching == Count(10, "at_least")
    assert counts_of(app, "q", {"label": "reject"}).matching == Count(0)
