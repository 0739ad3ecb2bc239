"""The promotion gate: a retrained local model replaces the one in force only if it is not
worse on the held-out slice; calibration is measured on that slice."""

from __future__ import annotations

from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sqlalchemy import select

from models import AuditEvent, ModelVersion
from review.db import db_session
from review.domain.promotion import promotion_verdict
from tests.workers.helpers import add_items, items_by_id, run_worker, seed_decisions, ticket
from tests.workers.test_local_model import train
from workers.recommenders import local


def versions(app, queue_id):
    with app.app_context():
        rows = (
            db_session()
            .scalars(
                select(ModelVersion)
                .where(ModelVersion.queue_id == queue_id)
                .order_by(ModelVersion.version)
            )
            .all()
        )
        return [(m.version, m.is_active, m.metrics) for m in rows]


def test_a_worse_candidate_is_stored_but_not_promoted(app, factory, monkeypatch):
    queue = factory.queue()
    reviewer = factory.user()
    seed_decisions(app, queue.slug, reviewer, per_label=20)
    assert train(app, queue.slug).is_active
    seed_decisions(app, queue.slug, reviewer, per_label=10, offset=300)
    # A candidate that guesses uniformly: clearly worse than the model in force.
    monkeypatch.setattr(
        local,
        "build_pipeline",
        lambda calibrated: Pipeline(
            [("tfidf", TfidfVectorizer()), ("classifier", DummyClassifier(strategy="uniform"))]
        ),
    )

    train(app, queue.slug)

    (v1, active1, m1), (v2, active2, m2) = versions(app, queue.id)
    assert (active1, active2) == (True, False)
    assert m2["promotion"]["promoted"] is False
    assert m2["promotion"]["against_version"] == 1
    assert m2["accuracy"] < m2["promotion"]["current_on_slice"]["accuracy"]
    # Items keep getting the model in force.
    ids = add_items(app, queue.slug, [ticket("reject", 900)], prefix="after")
    run_worker(app)
    assert items_by_id(app, ids)[ids[0]].recommendation.model_version == "local-v1"
    with app.app_context():
        event = db_session().scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "model.trained")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    assert event is not None


def test_a_candidate_at_least_as_good_is_promoted_on_the_same_slice(app, factory):
    queue = factory.queue()
    reviewer = factory.user()
    seed_decisions(app, queue.slug, reviewer, per_label=20)
    train(app, queue.slug)
    seed_decisions(app, queue.slug, reviewer, per_label=10, offset=300)

    train(app, queue.slug)

    (_, active1, _), (_, active2, m2) = versions(app, queue.id)
    assert (active1, active2) == (False, True)
    current = m2["promotion"]["current_on_slice"]
    assert m2["holdout"] == "fixed slice by item id"
    assert m2["accuracy"] >= current["accuracy"] and m2["brier"] <= current["brier"]


def test_calibration_is_measured_on_held_out_decisions(app, factory):
    queue = factory.queue()
    seed_decisions(app, queue.slug, factory.user(), per_label=30)

    model = train(app, queue.slug)

    metrics = model.metrics
    assert metrics["calibration"].startswith("sigmoid")
    assert metrics["n_eval"] >= 10
    # Calibrated: on decisions it never saw, stated confidence and accuracy agree.
    assert metrics["ece"] < 0.15, metrics
    assert abs(metrics["mean_confidence"] - metrics["accuracy"]) < 0.15


def test_verdict_rules():
    current = {"accuracy": 0.9, "brier": 0.2}
    assert promotion_verdict(None, current).promote
    assert promotion_verdict(current, {"accuracy": 0.9, "brier": 0.2}).promote
    assert not promotion_verdict(current, {"accuracy": 0.89, "brier": 0.1}).promote
    assert not promotion_verdict(current, {"accuracy": 0.95, "brier": 0.21}).promote
    assert "Brier" in promotion_verdict(current, {"accuracy": 0.95, "brier": 0.21}).reason
