"""The dashboard's series against values worked out by hand: audit precision of the items
the policy would have auto-approved, the estimate it should converge on, automation and a
drift alarm on the override rate."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from models import Item, Review
from models.base import utcnow
from review.db import db_session
from review.domain.estimates import wilson_interval
from review.services import dashboard, policy_stats, queues
from tests.conftest import login
from tests.web.policy.helpers import Row, add_member, seed, set_policy


@pytest.fixture
def audited_queue(app, factory, monkeypatch):
    """Threshold 0.8 and a 50% audit. Eight items at 0.9: the draws audit the first four
    (three right), the other four are auto-approved. Four items at 0.5 are reviewed (two
    right)."""
    queue = factory.queue()
    owner = factory.user("policy_owner")
    set_policy(app, queue.slug, owner, 0.8, audit_rate=0.5)
    rows = [Row("approve", 0.9, "approve") for _ in range(3)] + [Row("approve", 0.9, "reject")]
    rows += [Row("approve", 0.9) for _ in range(4)]
    rows += [Row("approve", 0.5, "approve" if i < 2 else "reject") for i in range(4)]
    draws = [0.1] * 4 + [0.9] * 4
    seed(app, monkeypatch, queue.slug, rows, factory.user("reviewer"), draws=draws)
    return queue


def build(app, slug: str) -> dashboard.Dashboard:
    with app.app_context():
        session = db_session()
        return dashboard.build_dashboard(session, queues.get_queue(session, slug))


def test_audit_precision_counts_only_audited_items_and_matches_the_policy_estimate(
    app, audited_queue
):
    data = build(app, audited_queue.slug)
    today = data.audit[-1]
    # Four audits, three right; every audit has the same weight (1 / 0.5), so the interval
    # is the plain Wilson interval on n = 4.
    assert today.cumulative.n_labeled == 4 and today.daily.n_labeled == 4
    assert today.cumulative.precision == pytest.approx(0.75)
    expected = wilson_interval(0.75, 4)
    assert (today.cumulative.ci_low, today.cumulative.ci_high) == pytest.approx(
        (expected.low, expected.high)
    )
    # Earlier days had no audit: nothing to show, not a zero.
    assert all(day.daily.precision is None for day in data.audit[:-1])
    # The policy in force auto-approves at 0.8; above it only the audits are labeled.
    assert data.policy_estimate.precision == pytest.approx(0.75)
    # 12 items routed today, 4 auto-approved.
    assert data.routed[-1] == 12
    assert data.automation_rate[-1] == pytest.approx(4 / 12)
    alarm = next(a for a in data.alarms if a.metric == "audit precision")
    assert not alarm.alarm and "too little data" in alarm.reason


def test_override_rate_drift_raises_an_alarm(app, factory, monkeypatch):
    queue = factory.queue()
    reviewer = factory.user("reviewer")
    # Three weeks ago people agreed with the AI 40 times out of 40; this week 5 of 30.
    old = seed(
        app, monkeypatch, queue.slug, [Row("approve", 0.6, "approve")] * 40, reviewer, prefix="o"
    )
    recent = [Row("approve", 0.6, "approve")] * 5 + [Row("approve", 0.6, "reject")] * 25
    seed(app, monkeypatch, queue.slug, recent, reviewer, prefix="r")
    with app.app_context():
        session = db_session()
        session.execute(
            update(Review)
            .where(Review.item_id.in_(old))
            .values(decided_at=utcnow() - timedelta(days=21))
        )
        session.commit()
    data = build(app, queue.slug)
    alarm = next(a for a in data.alarms if a.metric == "override rate of approve")
    assert alarm.alarm
    assert data.override_rate["approve"][-1] == pytest.approx(25 / 30)
    assert data.override_rate["approve"][-22] == 0.0


def test_the_dashboard_names_the_models_behind_the_policy_estimate(
    app, client, factory, monkeypatch
):
    monkeypatch.setitem(app.config, "POLICY_STATS_MAX_STALE_SECONDS", 0)  # no cached evidence
    queue = factory.queue()
    owner = factory.user("policy_owner")
    add_member(app, queue.slug, owner)
    reviewer = factory.user("reviewer")
    seed(
        app, monkeypatch, queue.slug, [Row("approve", 0.9, "approve", model="rules")] * 5, reviewer
    )
    login(client, owner.email)
    page = client.get(f"/policy/queues/{queue.slug}/dashboard")
    assert 'data-warning="other-models"' not in page.text

    seed(
        app,
        monkeypatch,
        queue.slug,
        [Row("approve", 0.7, None, model="tfidf")],
        reviewer,
        prefix="n",
    )
    data = build(app, queue.slug)
    assert (data.labeled_by_model, data.current_model) == ({"rules": 5}, "tfidf")
    page = client.get(f"/policy/queues/{queue.slug}/dashboard")
    warning = re.search(r'data-warning="other-models">(.*?)</p>', page.text, re.S)
    assert warning, "no warning that the estimate rests on another model"
    assert "5 labeled items scored by other models than tfidf (0 of its own)" in " ".join(
        warning.group(1).split()
    )


def test_the_dashboard_page_reuses_evidence_younger_than_the_staleness_limit(
    app, client, factory, monkeypatch
):
    queue = factory.queue()
    owner = factory.user("policy_owner")
    add_member(app, queue.slug, owner)
    reviewer = factory.user("reviewer")
    seed(app, monkeypatch, queue.slug, [Row("approve", 0.9, "approve", model="a")], reviewer)
    login(client, owner.email)
    builds = []
    real_build = policy_stats.build_evidence
    monkeypatch.setattr(
        policy_stats, "build_evidence", lambda *a, **k: builds.append(1) or real_build(*a, **k)
    )
    client.get(f"/policy/queues/{queue.slug}/dashboard")
    seed(
        app,
        monkeypatch,
        queue.slug,
        [Row("approve", 0.9, "approve", model="a")],
        reviewer,
        prefix="n",
    )
    # New labels moved the watermark, but the evidence is seconds old: one build, not two.
    page = client.get(f"/policy/queues/{queue.slug}/dashboard")
    assert page.status_code == 200 and len(builds) == 1


def test_depth_and_oldest_wait_at_each_day_end(app, factory, monkeypatch):
    queue = factory.queue()
    rows = [Row("approve", 0.5, "approve"), Row("approve", 0.5), Row("approve", 0.5, "approve")]
    a, b, c = seed(app, monkeypatch, queue.slug, rows, factory.user("reviewer"))
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def at(days_ago: int, hour: int):
        return midnight - timedelta(days=days_ago) + timedelta(hours=hour)

    # a waits from day -3 10:00 to day -1 12:00; b from day -2 20:00 until now; c is
    # decided the day it arrives, so it never waits at a day's end.
    times = {a: (at(3, 10), at(1, 12)), b: (at(2, 20), None), c: (at(2, 9), at(2, 15))}
    with app.app_context():
        session = db_session()
        for item_id, (arrived, decided) in times.items():
            session.execute(
                update(Item)
                .where(Item.id == item_id)
                .values(created_at=arrived, routed_at=arrived, decided_at=decided)
            )
        session.commit()
        data = dashboard.build_dashboard(session, queues.get_queue(session, queue.slug), now=now)
    assert data.depth[-5:] == [0, 1, 2, 1, 1]
    assert data.oldest_hours[-5:-1] == [None, 14.0, 38.0, 28.0]
    assert data.oldest_hours[-1] == pytest.approx((now - at(2, 20)).total_seconds() / 3600)
