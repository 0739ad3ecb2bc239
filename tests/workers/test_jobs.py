"""The recommend job, run by a real RQ worker against a real Redis."""

from __future__ import annotations

from sqlalchemy import func, select, text

from models import AuditEvent, Item, ModelVersion, Recommendation, RoutingRecord
from review.db import db_session
from review.services import queues
from tests.workers.helpers import (
    TELLS,
    add_items,
    items_by_id,
    run_worker,
    seed_decisions,
    ticket,
)
from workers.jobs import recommend_items


def permit_everything(app, queue_slug: str, owner) -> None:
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue_slug)
        queues.create_policy_version(
            session,
            queue,
            {"default_threshold": 0.0, "note": "trust the model"},
            session.merge(owner),
        )
        session.commit()


def test_untrained_local_queue_sends_items_to_review_without_advice(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", n) for n in range(3)])

    run_worker(app)

    items = items_by_id(app, ids)
    assert {item.status for item in items.values()} == {"needs_review"}
    assert {item.ai_status for item in items.values()} == {"none"}
    assert all(item.recommendation is None for item in items.values())
    assert all(item.routings[0].reason == "no AI recommendation" for item in items.values())


def test_model_trains_from_decisions_and_its_advice_is_auto_approved(app, factory):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    seed_decisions(app, queue.slug, factory.user("reviewer"), per_label=15)

    # The first job after the decisions finds training due; the same burst runs the training.
    before = add_items(app, queue.slug, [ticket("reject", 100)], prefix="before")
    run_worker(app)
    assert items_by_id(app, before)[before[0]].ai_status == "none"
    with app.app_context():
        model = db_session().scalar(select(ModelVersion).where(ModelVersion.queue_id == queue.id))
    assert model is not None and model.is_active and model.version == 1
    assert model.trained_on == 45

    permit_everything(app, queue.slug, owner)
    truth = {}
    payloads = []
    for label in TELLS:
        for n in range(200, 205):
            payloads.append(ticket(label, n))
            truth[len(payloads) - 1] = label
    ids = add_items(app, queue.slug, payloads, prefix="after")
    run_worker(app)

    items = items_by_id(app, ids)
    for item in items.values():
        rec = item.recommendation
        assert rec is not None
        assert (rec.source, rec.model_version) == ("local", "local-v1")
        assert 0.0 <= rec.confidence <= 1.0
        assert item.status == "auto_approved" and item.final_label == rec.label
        assert item.ai_status == "ok"
    right = sum(items[item_id].final_label == truth[i] for i, item_id in enumerate(ids))
    assert right >= 12, f"the model got only {right} of 15 distinguishable tickets right"


def test_local_advice_names_the_words_that_point_to_its_label(app, factory):
    queue = factory.queue()
    seed_decisions(app, queue.slug, factory.user("reviewer"), per_label=15)
    add_items(app, queue.slug, [ticket("reject", 100)], prefix="before")
    run_worker(app)  # trains the model

    payload = {
        "subject": "Our LAWYER will file a chargeback",
        "body": "hello team, the order was stolen",
        "customer": {"tier": "pro"},
    }
    ids = add_items(app, queue.slug, [payload], prefix="after")
    run_worker(app)

    rec = items_by_id(app, ids)[ids[0]].recommendation
    assert rec.label == "escalate"
    # The words as the item writes them (so the screen can highlight them), never a key.
    assert rec.evidence and set(rec.evidence) <= {"LAWYER", "chargeback", "stolen"}
    assert rec.rationale.startswith("Words that point to “escalate”: “")
    for word in rec.evidence:
        assert f"“{word}”" in rec.rationale
    assert "Next most likely: “" in rec.rationale


def _snapshot(app, ids):
    with app.app_context():
        session = db_session()
        rows = session.execute(
            select(Item.id, Item.status, Item.ai_status, Item.final_label, Item.routed_at)
            .where(Item.id.in_(ids))
            .order_by(Item.id)
        ).all()
        counts = [
            session.scalar(select(func.count()).select_from(model))
            for model in (Recommendation, RoutingRecord, AuditEvent)
        ]
        return rows, counts


def test_running_the_job_twice_changes_nothing(app, factory):
    queue = factory.queue()
    seed_decisions(app, queue.slug, factory.user("reviewer"), per_label=10)
    with app.app_context():
        from workers.recommenders.local import train_for_queue

        session = db_session()
        assert train_for_queue(session, queues.get_queue(session, queue.slug)) is not None
        session.commit()
    permit_everything(app, queue.slug, factory.user("policy_owner"))
    ids = add_items(app, queue.slug, [ticket("escalate", n) for n in range(4)], enqueue=False)

    with app.app_context():
        first = recommend_items(ids)
    after_first = _snapshot(app, ids)
    with app.app_context():
        second = recommend_items(ids)

    assert first == {"auto_approved": 4}
    assert second == {}
    assert _snapshot(app, ids) == after_first


def test_queue_switched_to_no_recommender_routes_pending_items_to_review(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", 1)], enqueue=False)
    with app.app_context():
        session = db_session()
        queues.get_queue(session, queue.slug).recommender_kind = "none"
        session.commit()
        recommend_items(ids)

    item = items_by_id(app, ids)[ids[0]]
    assert (item.status, item.ai_status, item.recommendation) == ("needs_review", "none", None)


def test_claude_queue_without_an_api_key_routes_to_review_as_unavailable(app, factory):
    queue = factory.queue(recommender={"kind": "claude"})
    ids = add_items(app, queue.slug, [ticket("reject", 1), ticket("approve", 2)])

    run_worker(app)

    for item in items_by_id(app, ids).values():
        assert (item.status, item.ai_status) == ("needs_review", "unavailable")
        assert item.ai_error == "not_configured: ANTHROPIC_API_KEY is not set"


def test_corrupt_model_artifact_routes_to_review_as_unavailable(app, factory):
    queue = factory.queue()
    seed_decisions(app, queue.slug, factory.user("reviewer"), per_label=8)
    with app.app_context():
        session = db_session()
        session.add(
            ModelVersion(
                queue_id=queue.id,
                version=7,
                kind="tfidf-logreg",
                trained_on=24,
                metrics={},
                artifact=b"not a pickle",
                is_active=True,
            )
        )
        session.commit()
    ids = add_items(app, queue.slug, [ticket("reject", 50)], prefix="x")

    run_worker(app)

    item = items_by_id(app, ids)[ids[0]]
    assert (item.status, item.ai_status) == ("needs_review", "unavailable")
    assert "local-v7 could not be loaded" in item.ai_error


def test_rows_locked_by_another_job_are_left_to_it(app, factory):
    queue = factory.queue()
    ids = add_items(app, queue.slug, [ticket("approve", 1)], enqueue=False)
    with app.app_context():
        engine = app.extensions["db"].engine
        if engine.dialect.name != "postgresql":
            return  # SQLite has no row locks; its single writer serialises jobs instead
        with engine.connect() as other_job:
            lock = text("SELECT id FROM items WHERE id = :id FOR UPDATE")
            other_job.execute(lock, {"id": ids[0]})
            assert recommend_items(ids) == {}
            other_job.rollback()
        assert items_by_id(app, ids)[ids[0]].status == "pending"
        assert recommend_items(ids) == {"needs_review": 1}
