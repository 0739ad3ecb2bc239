"""The queue page's filters, sorts, keyset pages and counts; and a reviewer's own numbers."""

from datetime import timedelta

import pytest
from sqlalchemy import update
from werkzeug.datastructures import MultiDict

from models import Item, Recommendation, Review, User
from models.base import utcnow
from review.db import db_session
from review.services import queue_views, queues, reviewer_stats
from review.services.counting import Count
from review.services.errors import ValidationFailed
from tests.services.test_reviewing import claim, decide
from tests.web.ui_helpers import add_items


def ids_of(app, slug):
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        return {
            item.external_id: item.id for item in session.query(Item).filter_by(queue_id=queue.id)
        }


def set_values(app, model, key, rows):
    """rows: {id: {column: value}}"""
    with app.app_context():
        session = db_session()
        for row_id, values in rows.items():
            session.execute(update(model).where(key == row_id).values(**values))
        session.commit()


def page(app, slug, args=None, cursor=None, limit=50):
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        filters = queue_views.parse_filters(MultiDict(args or {}), queue)
        result = queue_views.queue_page(session, queue, filters, cursor, utcnow(), limit=limit)
        return [row.item.external_id for row in result.rows], result.next_cursor


def walk(app, slug, args=None, limit=2):
    """Every page, following the cursors: the ids in order."""
    seen, cursor = [], None
    while True:
        ids, cursor = page(app, slug, args, cursor, limit)
        seen.extend(ids)
        if cursor is None:
            return seen


@pytest.fixture
def mixed_queue(app, factory):
    """Seven items: varied priority, age, AI label and confidence; two without advice."""
    factory.queue("q")
    add_items(app, "q", 5, prefix="r")
    add_items(app, "q", 2, prefix="n", with_recommendation=False)
    ids = ids_of(app, "q")
    now = utcnow()
    set_values(
        app,
        Item,
        Item.id,
        {
            ids["r-1"]: {"priority": 0, "created_at": now - timedelta(days=9)},
            ids["r-2"]: {"priority": 5, "created_at": now - timedelta(hours=30)},
            ids["r-3"]: {"priority": 0, "created_at": now - timedelta(minutes=5)},
            ids["r-4"]: {"priority": 5, "created_at": now - timedelta(minutes=30)},
            ids["r-5"]: {"priority": -2, "created_at": now - timedelta(hours=2)},
            ids["n-1"]: {"ai_status": "unavailable", "status": "needs_review"},
            ids["n-2"]: {"ai_status": "none", "status": "needs_review"},
        },
    )
    advice = {
        ids["r-1"]: {"confidence": 0.30, "label": "reject"},
        ids["r-2"]: {"confidence": 0.97},
        ids["r-3"]: {"confidence": 0.62},
        ids["r-4"]: {"confidence": 0.85, "label": "reject"},
        ids["r-5"]: {"confidence": 0.10},
    }
    set_values(app, Recommendation, Recommendation.item_id, advice)
    # Written behind the services' back, so the items' copies are set here too.
    copies = {
        item_id: {f"ai_{column}": value for column, value in values.items()}
        for item_id, values in advice.items()
    }
    set_values(app, Item, Item.id, copies)
    return ids


def test_priority_sort_walks_groups_and_pages_without_repeats(app, mixed_queue):
    # n-1 and n-2 (priority 0) were ingested after r-1 and r-3.
    expected = ["r-2", "r-4", "r-1", "r-3", "n-1", "n-2", "r-5"]
    assert page(app, "q")[0] == expected
    assert walk(app, "q", limit=2) == expected
    assert walk(app, "q", limit=3) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        ({"sort": "confidence"}, ["r-5", "r-1", "r-3", "r-4", "r-2"]),
        ({"sort": "oldest"}, ["r-1", "r-2", "r-5", "r-4", "r-3", "n-1", "n-2"]),
        ({"label": "reject"}, ["r-4", "r-1"]),
        ({"band": "medium"}, ["r-3"]),
        ({"band": "very_high"}, ["r-2"]),
        ({"age": "gt24h", "sort": "oldest"}, ["r-1", "r-2"]),
        ({"age": "gt7d"}, ["r-1"]),
        ({"age": "lt1h", "label": "approve"}, ["r-3"]),
        ({"min_priority": "1"}, ["r-2", "r-4"]),
        ({"no_rec": "1"}, ["n-1", "n-2"]),
        ({"ai_unavailable": "1"}, ["n-1"]),
    ],
)
def test_filters_and_sorts(app, mixed_queue, args, expected):
    assert walk(app, "q", args, limit=2) == expected


def test_newest_first_pages_backwards_in_time(app, mixed_queue):
    expected = ["n-2", "n-1", "r-3", "r-4", "r-5", "r-2", "r-1"]
    assert walk(app, "q", {"sort": "newest"}, limit=2) == expected


@pytest.mark.parametrize(
    "args, field",
    [
        ({"sort": "random"}, "sort"),
        ({"label": "nope"}, "label"),
        ({"min_priority": "high"}, "min_priority"),
        ({"band": "huge"}, "band"),
        ({"no_rec": "1", "label": "approve"}, "no_rec"),
    ],
)
def test_bad_filters_name_the_field(app, factory, args, field):
    queue = factory.queue("q")
    with pytest.raises(ValidationFailed) as error:
        queue_views.parse_filters(MultiDict(args), queue)
    assert field in error.value.fields


def test_a_forged_cursor_is_a_validation_error(app, mixed_queue):
    with pytest.raises(ValidationFailed) as error:
        page(app, "q", cursor="<script>_x")
    assert "after" in error.value.fields


def test_counts_by_status_in_review_and_matching(app, factory, mixed_queue):
    reviewer = factory.user()
    claim(app, "q", reviewer.id)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        filters = queue_views.parse_filters(MultiDict({"label": "reject"}), queue)
        counts = queue_views.queue_counts(session, queue, filters, utcnow())
    assert (counts.needs_review, counts.in_review, counts.pending) == (
        Count(7),
        Count(1),
        Count(0),
    )
    assert counts.matching == Count(2)


def test_reviewer_numbers_for_today(app, factory, mixed_queue):
    alice = factory.user()
    decided = []
    for data in (
        {"action": "approve"},
        {"action": "override", "label": "escalate", "reason_code": "wrong_label"},
        {"action": "approve"},
    ):
        item_id = claim(app, "q", alice.id)
        decide(app, item_id, alice.id, data)
        decided.append(item_id)
    with app.app_context():
        session = db_session()
        for seconds, item_id in zip((4.0, 10.0, 30.0), decided, strict=True):
            session.execute(
                update(Review).where(Review.item_id == item_id).values(seconds_on_item=seconds)
            )
        # A decision from yesterday does not count today.
        session.execute(
            update(Review)
            .where(Review.item_id == decided[2])
            .values(decided_at=utcnow() - timedelta(days=2))
        )
        session.commit()
        stats = reviewer_stats.reviewer_stats(session, session.merge(alice), utcnow())
    assert stats.decisions_today == 2
    assert stats.median_seconds == 7.0
    assert (stats.agreement, stats.compared) == (0.5, 2)


def test_decided_items_come_latest_decision_first_page_by_page(app, mixed_queue):
    ids = ids_of(app, "q")
    now = utcnow()
    decided = {"r-1": 3, "r-2": 1, "r-3": 2, "r-4": 5}  # minutes ago
    set_values(
        app,
        Item,
        Item.id,
        {
            ids[name]: {
                "status": "decided",
                "final_label": "reject",
                "decided_at": now - timedelta(minutes=ago),
            }
            for name, ago in decided.items()
        }
        | {ids["r-5"]: {"status": "auto_approved", "final_label": "approve", "decided_at": now}},
    )

    # The default for decided items, walked two at a time through the keyset cursors.
    assert walk(app, "q", {"status": "decided"}) == ["r-2", "r-3", "r-1", "r-4"]
    assert walk(app, "q", {"status": "auto_approved"}) == ["r-5"]
    # Another sort still applies when asked for.
    assert page(app, "q", {"status": "decided", "sort": "oldest"})[0] == [
        "r-1",
        "r-2",
        "r-4",
        "r-3",
    ]
    # Back to waiting items with the decided sort still in the form: their own default.
    assert page(app, "q", {"sort": "decided"})[0] == ["n-1", "n-2"]


def test_decided_items_filter_by_final_label_outcome_and_reviewer(app, factory, mixed_queue):
    """Real decisions by two people: each filter narrows the list and the matching count
    alike, and the list names who decided each item."""
    alice = factory.user(email="alice@example.com")
    bob = factory.user(email="bob@example.com")
    # Claimed in priority order: r-2 (AI: approve), r-4 (AI: reject), r-1 (AI: reject).
    # Alice approves one and overrides one to "escalate"; Bob overrides one to "approve".
    plan = [
        (alice, {"action": "approve"}),
        (alice, {"action": "override", "label": "escalate", "reason_code": "wrong_label"}),
        (bob, {"action": "override", "label": "approve", "reason_code": "missing_context"}),
    ]
    names = {item_id: name for name, item_id in ids_of(app, "q").items()}
    kept, corrected, bobs = [], [], []
    for person, data in plan:
        item_id = claim(app, "q", person.id)
        decide(app, item_id, person.id, data)
        (bobs if person is bob else corrected if data["action"] == "override" else kept).append(
            names[item_id]
        )
    assert (kept, corrected, bobs) == (["r-2"], ["r-4"], ["r-1"])

    def listed(args):
        with app.app_context():
            session = db_session()
            queue = queues.get_queue(session, "q")
            people = {person.id for person in queue_views.deciders(session)}
            filters = queue_views.parse_filters(MultiDict(args), queue, people)
            rows = queue_views.queue_page(session, queue, filters, None, utcnow()).rows
            counts = queue_views.queue_counts(session, queue, filters, utcnow())
            assert counts.matching == Count(len(rows))
            return {row.item.external_id: row.decided_by for row in rows}

    assert listed({"status": "decided"}) == {
        "r-2": "alice@example.com",
        "r-4": "alice@example.com",
        "r-1": "bob@example.com",
    }
    alices = {"status": "decided", "decided_by": str(alice.id)}
    assert set(listed(alices)) == {"r-2", "r-4"}
    assert set(listed({**alices, "outcome": "overridden"})) == {"r-4"}
    assert set(listed({**alices, "outcome": "agreed"})) == {"r-2"}
    assert set(listed({"status": "decided", "outcome": "overridden"})) == {"r-4", "r-1"}
    assert set(listed({"status": "decided", "final_label": "approve"})) == {"r-2", "r-1"}
    assert set(listed({**alices, "final_label": "approve"})) == {"r-2"}
    assert listed({**alices, "final_label": "reject"}) == {}


def test_decided_filters_left_in_the_form_do_not_narrow_waiting_items(app, factory, mixed_queue):
    alice = factory.user()
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        args = {"final_label": "reject", "outcome": "overridden", "decided_by": str(alice.id)}
        waiting = queue_views.parse_filters(MultiDict(args), queue)
        auto = queue_views.parse_filters(MultiDict({**args, "status": "auto_approved"}), queue)
    assert (waiting.final_label, waiting.outcome, waiting.decided_by) == (None, None, None)
    assert waiting.as_params() == {}
    # The policy decides auto-approved items: their final label applies, who and how not.
    assert (auto.final_label, auto.outcome, auto.decided_by) == ("reject", None, None)
    assert len(page(app, "q", args)[0]) == 7


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"status": "decided", "final_label": "maybe"}, "final_label"),
        ({"status": "decided", "outcome": "unsure"}, "outcome"),
        ({"status": "decided", "decided_by": "alice"}, "decided_by"),
        ({"status": "decided", "decided_by": "99999"}, "decided_by"),
    ],
)
def test_bad_decided_filters_name_the_field(app, factory, args, field):
    queue = factory.queue("q")
    reviewer = factory.user()
    with pytest.raises(ValidationFailed) as error:
        queue_views.parse_filters(MultiDict(args), queue, {reviewer.id})
    assert field in error.value.fields


def test_deciders_are_who_may_decide_and_who_did(app, factory, mixed_queue):
    factory.user(email="rita@example.com")
    factory.user(role="policy_owner", email="paula@example.com")
    moved_on = factory.user(email="mo@example.com")
    item_id = claim(app, "q", moved_on.id)
    decide(app, item_id, moved_on.id, {"action": "approve"})
    with app.app_context():
        session = db_session()
        user = session.get(User, moved_on.id)
        user.role = "policy_owner"  # promoted since: their decisions can still be found
        session.commit()
        names = [person.name for person in queue_views.deciders(session)]
    # Not the policy owner, who never decided anything.
    assert names == ["mo@example.com", "rita@example.com"]


@pytest.fixture
def worded_queue(app, factory):
    """Items whose payloads say different things, in strings and numbers at any depth."""
    factory.queue("q")
    payloads = {
        "chargeback": {"text": "Customer filed a chargeback for order A-17", "amount": 42.5},
        "refunded": {"text": "Refunded twice, wants the second one back", "tier": "pro"},
        "nested": {"thread": [{"from": "Maria", "body": "My refund never arrived"}]},
        "keys-only": {"refund": "no", "note": "nothing to see", "channel": "web_form"},
    }
    for name, payload in payloads.items():
        add_items(app, "q", 1, payload=payload, prefix=name)
    set_values(
        app, Item, Item.id, {ids: {"ai_label": "reject"} for ids in [ids_of(app, "q")["nested-1"]]}
    )


def search(app, q, **args):
    found = set(page(app, "q", {"q": q, **args})[0])
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        filters = queue_views.parse_filters(MultiDict({"q": q, **args}), queue)
        counts = queue_views.queue_counts(session, queue, filters, utcnow())
    assert counts.matching == Count(len(found))
    return found


@pytest.mark.parametrize("few_matches", [2_000, 0], ids=["matches-first", "walk"])
def test_search_finds_words_of_the_payloads_values(app, worded_queue, monkeypatch, few_matches):
    # Both ways to a page: the matches looked up first, or the page's index walked.
    monkeypatch.setattr(queue_views, "FEW_MATCHES", few_matches)
    # A whole word, at any depth, in any case; never a key.
    assert search(app, "refund") == {"nested-1"}
    assert search(app, "refunded") == {"refunded-1"}
    assert search(app, "MARIA") == {"nested-1"}
    assert search(app, "chargeback A-17") == {"chargeback-1"}
    # Every word must appear; a -word must not.
    assert search(app, "refund arrived") == {"nested-1"}
    assert search(app, "refund -maria") == set()
    assert search(app, "twice -maria") == {"refunded-1"}
    # Numbers are values too.
    assert search(app, "42.5") == {"chargeback-1"}
    assert search(app, "nothing") == {"keys-only-1"}
    assert search(app, "zebra") == set()
    # With the other filters.
    assert search(app, "refund", label="reject") == {"nested-1"}
    assert search(app, "refunded", label="reject") == set()
    # Punctuation separates words, in the text and in the search.
    assert search(app, "refund.") == search(app, "(refund)") == {"nested-1"}
    assert search(app, "web") == search(app, "form") == {"keys-only-1"}
    # Phrases, alternatives and double dashes as a search engine reads them.
    assert search(app, '"second one"') == {"refunded-1"}
    assert search(app, '"one second"') == set()
    assert search(app, "maria or chargeback") == {"nested-1", "chargeback-1"}
    assert search(app, '-"my refund" refund or twice') == {"refunded-1"}
    assert search(app, "--maria") == {"nested-1"}


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("x" * 201, "search for at most 200 characters"),
        ("-- !!", "type a word or a number"),
        # Underscores separate words and make none: on SQLite this matched every item.
        ("__ _", "type a word or a number"),
    ],
)
def test_a_search_without_words_or_too_long_is_refused(app, factory, q, message):
    queue = factory.queue("q")
    with pytest.raises(ValidationFailed) as error:
        queue_views.parse_filters(MultiDict({"q": q}), queue)
    assert error.value.fields == {"q": message}


def test_hostile_searches_are_only_words(app, worded_queue):
    for q in ("'; DROP TABLE items; --", "a:* | b", "x\\", "%_%z", "'\"'\"x", "!(x) & y:A"):
        assert search(app, q) == set(), q
    assert ids_of(app, "q")  # still there
