"""Items carry copies of their recommendation's label and confidence (the queue page filters
and sorts on them). Every way a recommendation arrives must leave the copies right."""

import os

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from werkzeug.datastructures import MultiDict

from models import Item, Recommendation
from models.base import utcnow
from review.db import db_session
from review.services import queue_views, queues, recommending
from review.services.routing import RecommendationInput
from tests.conftest import alembic_config
from tests.services.test_imports import confirm_and_run, start, write_csv
from tests.web.ui_helpers import add_items


def copies_and_recommendations(app, slug):
    """{external_id: ((ai_label, ai_confidence), (rec label, rec confidence) or None)}"""
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        rows = session.execute(
            select(Item.external_id, Item.ai_label, Item.ai_confidence, Recommendation)
            .outerjoin(Recommendation, Recommendation.item_id == Item.id)
            .where(Item.queue_id == queue.id)
        ).all()
        return {
            external_id: ((label, confidence), (rec.label, rec.confidence) if rec else None)
            for external_id, label, confidence, rec in rows
        }


def assert_copies_match(app, slug):
    rows = copies_and_recommendations(app, slug)
    assert rows
    for external_id, (copy, recommendation) in rows.items():
        assert copy == (recommendation or (None, None)), external_id


def listed(app, slug, args):
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        filters = queue_views.parse_filters(MultiDict(args), queue)
        page = queue_views.queue_page(session, queue, filters, None, utcnow())
        return [row.item.external_id for row in page.rows]


def test_items_ingested_with_a_recommendation_carry_its_label(app, factory):
    factory.queue("q")
    add_items(app, "q", 2, prefix="spam", label="reject", confidence=0.31)
    add_items(app, "q", 1, prefix="ok", label="approve", confidence=0.77)
    add_items(app, "q", 1, prefix="none", with_recommendation=False)

    assert_copies_match(app, "q")
    assert sorted(listed(app, "q", {"label": "reject"})) == ["spam-1", "spam-2"]
    assert listed(app, "q", {"sort": "confidence"}) == ["spam-1", "spam-2", "ok-1"]


def test_the_recommend_job_leaves_the_copies_right_whatever_the_advice(app, factory):
    factory.queue("q")  # a local recommender: items wait for the worker
    add_items(app, "q", 3, with_recommendation=False)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        items = recommending.lock_pending_items(
            session, list(session.scalars(select(Item.id).order_by(Item.id)))
        )
        advice = [
            RecommendationInput("local", "m", "escalate", 0.55),
            None,  # the model had nothing to say
            RecommendationInput("local", "m", "not-a-label", 0.9),  # refused
        ]
        recommending.apply_recommendations(session, queue, items, advice)
        session.commit()

    rows = copies_and_recommendations(app, "q")
    assert rows["item-1"] == (("escalate", 0.55), ("escalate", 0.55))
    assert rows["item-2"] == ((None, None), None)
    assert rows["item-3"] == ((None, None), None)
    assert listed(app, "q", {"label": "escalate"}) == ["item-1"]
    assert listed(app, "q", {"band": "medium"}) == ["item-1"]


def test_advice_from_an_external_model_leaves_the_copies_right(app, factory):
    factory.queue("q")
    add_items(app, "q", 1, with_recommendation=False)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "q")
        item = recommending.lock_pending_item(session, session.scalar(select(Item.id)))
        recommending.record_advice(
            session,
            queue,
            item,
            RecommendationInput("claude", "claude-haiku", "reject", 0.42),
            evidence=["Ticket"],
        )
        session.commit()

    assert copies_and_recommendations(app, "q")["item-1"] == (("reject", 0.42), ("reject", 0.42))


def test_imported_rows_with_a_recommendation_carry_its_label(app, factory, tmp_path):
    factory.queue("q", recommender={"kind": "none"})
    rows = [
        ["T-1", "s", "b", "reject", "0.25", "legacy"],
        ["T-2", "s", "b", "approve", "0.66", "legacy"],
        ["T-3", "s", "b", "", "", ""],  # no recommendation: straight to people
    ]
    import_id = start(app, write_csv(tmp_path / "t.csv", rows), "q")
    confirm_and_run(app, import_id)

    rows_by_id = copies_and_recommendations(app, "q")
    assert rows_by_id["T-1"] == (("reject", 0.25), ("reject", 0.25))
    assert rows_by_id["T-2"] == (("approve", 0.66), ("approve", 0.66))
    assert rows_by_id["T-3"] == ((None, None), None)
    assert listed(app, "q", {"label": "reject"}) == ["T-1"]


def _scratch_url(tmp_path, backend):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'backfill.db'}"
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set; PostgreSQL run skipped")
    url = make_url(base)
    scratch = url.set(database=f"{url.database}_backfill")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    admin.dispose()
    return scratch.render_as_string(hide_password=False)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_copies_existing_recommendations_onto_their_items(tmp_path, backend):
    url = _scratch_url(tmp_path, backend)
    config = alembic_config(url)
    command.upgrade(config, "0008")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO queues (id, slug, name, labels, instructions, reason_codes, "
                "recommender_kind, created_at, updated_at) VALUES (1, 'q', 'Q', "
                "'[\"a\", \"b\"]', '', '[]', 'none', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        for item_id in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO items (id, queue_id, external_id, payload, payload_sha256, "
                    "priority, status, created_at, updated_at) VALUES "
                    f"({item_id}, 1, 'e{item_id}', '{{}}', 'x', 0, 'needs_review', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        conn.execute(
            text(
                "INSERT INTO recommendations (item_id, source, model, label, confidence, "
                "rationale, created_at) VALUES (1, 'external', 'm', 'b', 0.875, '', "
                "CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(config, "0009")
    with engine.connect() as conn:
        copies = conn.execute(
            text("SELECT id, ai_label, ai_confidence FROM items ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in copies] == [(1, "b", 0.875), (2, None, None)]
