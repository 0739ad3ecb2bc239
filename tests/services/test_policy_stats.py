"""The stats service end to end: items routed with audit sampling, labeled by people, and
the selection-corrected estimate compared with the known truth."""

from __future__ import annotations

import random

import pytest

from models import Item, Review
from review.db import db_session
from review.services import policy_stats, queues
from review.services.routing import RecommendationInput, attach_recommendation, route_item
from tests.web.policy.helpers import Row, seed

THRESHOLD, AUDIT_RATE = 0.8, 0.25


def simulate_queue(app, factory, rng: random.Random, n: int = 500):
    """Route n items whose AI is right with probability = confidence; people label every
    item sent to them. Returns the queue and the population as (confidence, AI right)."""
    made = factory.queue()
    reviewer = factory.user("reviewer")
    owner = factory.user("policy_owner")
    population = [(c, rng.random() < c) for c in (rng.random() for _ in range(n))]
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, made.slug)
        body = {"default_threshold": THRESHOLD, "audit_rate": AUDIT_RATE, "note": "sim"}
        policy = queues.create_policy_version(session, queue, body, session.merge(owner))
        items = [
            Item(queue_id=queue.id, external_id=f"s{i}", payload={}, payload_sha256="")
            for i in range(n)
        ]
        session.add_all(items)
        session.flush()
        with session.no_autoflush:
            for item, (confidence, right) in zip(items, population, strict=True):
                rec = attach_recommendation(
                    session, item, RecommendationInput("external", "m", "approve", confidence)
                )
                route_item(session, item, queue, rec, policy=policy, rng=rng)
                if item.status == "needs_review":
                    final = "approve" if right else "reject"
                    item.status, item.final_label = "decided", final
                    session.add(
                        Review(
                            item_id=item.id,
                            reviewer_id=reviewer.id,
                            ai_label="approve",
                            final_label=final,
                            action="approved" if right else "overridden",
                        )
                    )
        session.commit()
    return made, population


def test_weighted_estimate_through_routing_is_unbiased(app, factory):
    rng = random.Random(17)
    estimates, naive, truths, covered = [], [], [], 0
    runs = 10
    for _ in range(runs):
        queue, population = simulate_queue(app, factory, rng)
        with app.app_context():
            session = db_session()
            evidence = policy_stats.build_evidence(session, queues.get_queue(session, queue.slug))
            result = policy_stats.label_what_if(evidence, "approve", 0.6).result
            labeled = [
                right == "approve"
                for c, right in session.query(Item.id, Review.final_label)
                .join(Review, Review.item_id == Item.id)
                .filter(Item.queue_id == queue.id)
                .all()
            ]
        above = [right for confidence, right in population if confidence >= 0.6]
        truth = sum(above) / len(above)
        truths.append(truth)
        estimates.append(result.precision)
        covered += result.ci_low <= truth <= result.ci_high
        assert labeled  # people labeled something in every run
        naive_obs = [
            right
            for confidence, right in population
            if confidence >= 0.6 and confidence < THRESHOLD
        ]
        naive.append(sum(naive_obs) / len(naive_obs))
    mean_truth = sum(truths) / runs
    assert sum(estimates) / runs == pytest.approx(mean_truth, abs=0.02)
    # Looking only at reviewed items (below the threshold) badly underestimates precision.
    assert sum(naive) / runs < mean_truth - 0.05
    assert covered >= runs - 2


def test_evidence_is_rebuilt_when_new_labels_arrive(app, factory):
    queue, _ = simulate_queue(app, factory, random.Random(3), n=60)
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue.slug)
        first = policy_stats.queue_evidence(session, queue, max_stale_seconds=0)
        again = policy_stats.queue_evidence(session, queue, max_stale_seconds=0)
        assert again is first  # nothing changed: the cached curves are reused
        item = Item(queue_id=queue.id, external_id="late", payload={}, payload_sha256="")
        session.add(item)
        session.flush()
        rec = attach_recommendation(
            session, item, RecommendationInput("external", "m", "approve", 0.99)
        )
        route_item(session, item, queue, rec)
        session.commit()
        stale_ok = policy_stats.queue_evidence(session, queue, max_stale_seconds=3600)
        assert stale_ok is first  # allowed to be an hour old: no rescan per slider move
        fresh = policy_stats.queue_evidence(session, queue, max_stale_seconds=0)
        assert fresh is not first
        assert fresh.total_recommended == first.total_recommended + 1


def test_evidence_counts_labeled_items_per_model_and_names_the_current_one(
    app, factory, monkeypatch
):
    queue = factory.queue()
    reviewer = factory.user("reviewer")
    seed(app, monkeypatch, queue.slug, [Row("approve", 0.9, "approve", model="a")] * 3, reviewer)
    seed(
        app,
        monkeypatch,
        queue.slug,
        [Row("approve", 0.9, "reject", model="b"), Row("approve", 0.95, None, model="b")],
        reviewer,
        prefix="b",
    )
    with app.app_context():
        session = db_session()
        evidence = policy_stats.build_evidence(session, queues.get_queue(session, queue.slug))
    assert evidence.labeled_by_model == {"a": 3, "b": 1}
    assert evidence.current_model == "b"
    assert evidence.other_models_labeled == 3
    # Both models' items in one confidence bin still count once each in the curve.
    estimate = evidence.label("approve").curve.at(0.9)
    assert (estimate.n_labeled, estimate.precision) == (4, 0.75)
