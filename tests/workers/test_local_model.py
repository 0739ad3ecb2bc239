"""Training the local model: the gate, the metrics, versions, and scheduling retraining."""

from __future__ import annotations

import pickle

from sqlalchemy import select

from models import ModelVersion
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import queues
from tests.conftest import ids_start_at_one
from tests.workers.helpers import seed_decisions, ticket
from workers.jobs import TRAIN_JOB, enqueue_training
from workers.recommenders.local import (
    MIN_HELD_OUT,
    held_out,
    train_for_queue,
    training_due,
)
from workers.recommenders.text import payload_document


def train(app, queue_slug):
    with app.app_context():
        session = db_session()
        model = train_for_queue(session, queues.get_queue(session, queue_slug))
        session.commit()
        if model is not None:
            session.expunge(model)
        return model


def test_too_few_decisions_train_nothing(app, factory):
    queue = factory.queue()
    seed_decisions(app, queue.slug, factory.user(), per_label=6)  # 18 < 20
    assert train(app, queue.slug) is None
    with app.app_context():
        assert db_session().scalar(select(ModelVersion)) is None


def test_one_well_covered_label_trains_nothing(app, factory):
    queue = factory.queue()
    reviewer = factory.user()
    seed_decisions(app, queue.slug, reviewer, per_label=20, labels=("approve",))
    seed_decisions(app, queue.slug, reviewer, per_label=4, labels=("reject",), offset=100)
    assert train(app, queue.slug) is None


def test_trained_model_records_held_out_metrics(app, factory):
    queue = factory.queue()
    truth = seed_decisions(app, queue.slug, factory.user(), per_label=10)

    model = train(app, queue.slug)

    assert model is not None and model.is_active and model.kind == "tfidf-logreg"
    metrics = model.metrics
    assert metrics["n_train"] + metrics["n_eval"] == 30
    # Which held-out rule applies depends on the ids the database handed out: the
    # fixed per-item slice when it is big enough, else a one-off stratified split.
    in_slice = [item_id for item_id in truth if held_out(item_id)]
    if len(in_slice) >= MIN_HELD_OUT:
        assert metrics["holdout"] == "fixed slice by item id"
        assert metrics["n_eval"] == len(in_slice)
    else:
        assert metrics["holdout"] == "one-off stratified split"
        assert metrics["n_eval"] == 6  # 20% of each label
    assert metrics["label_counts"] == {"approve": 10, "escalate": 10, "reject": 10}
    assert 0.0 <= metrics["ece"] <= 1.0
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["calibration"].startswith("none: plain logistic regression")
    pipeline = pickle.loads(model.artifact)
    assert pipeline.predict([payload_document(ticket("escalate", 999))])[0] == "escalate"


def test_enough_decisions_per_label_get_a_calibrated_model(app, factory):
    queue = factory.queue()
    # 40 per label: the held-out slice (about a fifth, by item-id hash) then always leaves
    # the 15 training decisions per label that calibration needs (with 25 per label, 1.5%
    # of id ranges held out more than 10 of a label's items).
    seed_decisions(app, queue.slug, factory.user(), per_label=40)

    model = train(app, queue.slug)

    assert model.metrics["calibration"].startswith("sigmoid")
    assert model.metrics["accuracy"] >= 0.75


def test_retraining_makes_a_new_active_version(app, factory):
    # The promotion gate compares the two models on held-out items, chosen by a hash of
    # their ids; with other ids the second model's Brier score can come out a hair worse
    # on these few tickets (seen on PostgreSQL, whose ids carry on from earlier tests).
    ids_start_at_one(app)
    queue = factory.queue()
    reviewer = factory.user()
    seed_decisions(app, queue.slug, reviewer, per_label=8)
    first = train(app, queue.slug)
    with app.app_context():
        assert not training_due(db_session(), queue.id)
    seed_decisions(app, queue.slug, reviewer, per_label=9, offset=50)  # 27 new decisions
    with app.app_context():
        assert training_due(db_session(), queue.id)

    second = train(app, queue.slug)

    with app.app_context():
        rows = db_session().scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
    assert [(m.version, m.is_active) for m in rows] == [(1, False), (2, True)]
    assert (first.trained_on, second.trained_on) == (24, 51)


def test_training_is_enqueued_once_while_one_is_pending(app, factory):
    queue = factory.queue()
    with app.app_context():
        assert enqueue_training(queue.id) is True
        assert enqueue_training(queue.id) is False
        jobs = get_rq_queue().get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [(TRAIN_JOB, (queue.id,))]


def test_payload_document_keeps_keys_and_nested_strings():
    doc = payload_document({"subject": "refund", "meta": {"lang": "en", "n": 3}, "tags": ["vip"]})
    assert doc == "subject refund meta lang en n tags vip"
