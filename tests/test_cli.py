"""The `flask users`, `flask tokens` and `flask seed` commands."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from sqlalchemy import func, select

from app import create_app
from models import (
    AuditEvent,
    Item,
    ModelVersion,
    PolicyVersion,
    Queue,
    Recommendation,
    Review,
    RoutingRecord,
    User,
)
from models.base import utcnow
from review import demo_data
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import accounts, queues
from tests.conftest import ids_start_at_one, login
from workers.worker import create_worker


def count(app, model) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count()).select_from(model))


def statuses(app, queue_slug: str) -> Counter[str]:
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, queue_slug)
        rows = session.scalars(select(Item.status).where(Item.queue_id == queue.id))
        return Counter(rows)


# --- users ---------------------------------------------------------------------------------


def test_users_create_makes_a_user_who_can_log_in(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Lee@Example.com",
            "--role",
            "policy_owner",
            "--password",
            "s3cret-pass",
            "--name",
            "Lee",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created policy_owner lee@example.com" in result.output
    with app.app_context():
        user = accounts.authenticate(db_session(), "lee@example.com", "s3cret-pass")
        assert user is not None
        assert (user.role, user.display_name) == ("policy_owner", "Lee")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["not-an-email", "--role", "reviewer", "--password", "long-enough"], "email"),
        (["a@example.com", "--role", "boss", "--password", "long-enough"], "role: must be one of"),
        (["a@example.com", "--role", "reviewer", "--password", "short"], "password: must be at"),
    ],
)
def test_users_create_rejects_bad_input_with_exit_code_1(app, runner, args, expected):
    result = runner.invoke(args=["users", "create", *args])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    assert count(app, User) == 0


def test_users_create_refuses_an_existing_email(app, runner, factory):
    factory.user(email="taken@example.com")
    result = runner.invoke(
        args=[
            "users",
            "create",
            "taken@example.com",
            "--role",
            "admin",
            "--password",
            "long-enough",
        ]
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert count(app, User) == 1


# --- tokens --------------------------------------------------------------------------------


def test_tokens_create_prints_a_working_token_once(app, runner, factory):
    factory.user(email="ingest@example.com")
    result = runner.invoke(args=["tokens", "create", "ingest@example.com", "--name", "nightly"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith(accounts.TOKEN_PREFIX)
    with app.app_context():
        token = accounts.token_for_secret(db_session(), secret)
        assert token is not None
        assert (token.user.email, token.name) == ("ingest@example.com", "nightly")


def test_tokens_create_for_an_unknown_user_fails_cleanly(app, runner):
    result = runner.invoke(args=["tokens", "create", "ghost@example.com"])
    assert result.exit_code == 1
    assert "no user ghost@example.com" in result.output
    assert "Traceback" not in result.output


# --- seed demo -----------------------------------------------------------------------------


def test_seed_demo_builds_a_trained_queue_with_pending_work(app, runner):
    result = runner.invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    for user in demo_data.DEMO_USERS:
        assert f"{user.email}" in result.output
    assert "password: demo-password" in result.output

    with app.app_context():
        session = db_session()
        for user in demo_data.DEMO_USERS:
            logged_in = accounts.authenticate(session, user.email, "demo-password")
            assert logged_in is not None and logged_in.role == user.role
        queue = queues.get_queue(session, "support-triage")
        policy = queues.current_policy(session, queue)
        assert (policy.version, policy.default_threshold) == (3, 0.94)
        actions = Counter(session.scalars(select(Review.action)))
        model = session.scalar(select(ModelVersion).where(ModelVersion.is_active.is_(True)))
        # Every pending item is handed to the worker.
        enqueued = sum(len(job.args[0]) for job in get_rq_queue().jobs)
    assert enqueued == 60
    routed = statuses(app, "support-triage")
    assert routed["pending"] == 60
    assert routed["decided"] + routed["auto_approved"] == demo_data.HISTORY_COUNT
    assert 0 < routed["auto_approved"] < routed["decided"]
    # A real mix: the rules and the model were right mostly, not always.
    assert actions["approved"] > 10 * actions["overridden"] > 1000
    # local-v1 learned from the keyword era, but ambiguous tickets keep it from perfection.
    assert model is not None and model.version == 1 and 0.75 <= model.metrics["accuracy"] < 1.0


def test_seed_demo_tells_the_story_era_by_era(app, runner):
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    now = utcnow()
    with app.app_context():
        session = db_session()
        rows = session.execute(
            select(
                Item.created_at,
                Item.decided_at,
                Item.status,
                Recommendation.model,
                PolicyVersion.version,
                RoutingRecord.route,
                RoutingRecord.audit,
                RoutingRecord.inclusion_probability,
            )
            .join(Recommendation, Recommendation.item_id == Item.id)
            .join(RoutingRecord, RoutingRecord.item_id == Item.id)
            .join(PolicyVersion, PolicyVersion.id == RoutingRecord.policy_version_id)
        ).all()
        versions = {v.version: v for v in session.scalars(select(PolicyVersion))}
        model = session.scalar(select(ModelVersion))
        reviewed = session.scalar(select(func.count()).where(Review.seconds_on_item > 0))
        audit_actions = Counter(session.scalars(select(AuditEvent.action)))
    assert len(rows) == demo_data.HISTORY_COUNT
    by_version = {n: [r for r in rows if r.version == n] for n in (1, 2, 3)}
    assert [len(by_version[n]) for n in (1, 2, 3)] == [era.count for era in demo_data.ERAS]
    # Keyword era: the rules engine's guesses, everything reviewed.
    assert {r.model for r in by_version[1]} == {demo_data.KEYWORD_MODEL}
    # Shadow and policy eras: local-v1, trained before the shadow era began.
    assert {r.model for r in by_version[2] + by_version[3]} == {"tfidf-logreg"}
    assert model.created_at < versions[2].activated_at <= min(r.created_at for r in by_version[2])
    for r in by_version[1] + by_version[2]:
        assert (r.route, r.status, r.inclusion_probability, r.audit) == (
            "review",
            "decided",
            1.0,
            False,
        )
    # Policy era: auto-approvals, blind audits at the policy's rate, the rest reviewed.
    kinds = Counter((r.route, r.status, r.audit, r.inclusion_probability) for r in by_version[3])
    rate = demo_data.DEMO_POLICY["audit_rate"]
    assert set(kinds) == {
        ("auto_approve", "auto_approved", False, 0.0),
        ("review", "decided", True, rate),
        ("review", "decided", False, 1.0),
    }
    assert kinds[("review", "decided", True, rate)] >= 20
    assert (
        audit_actions["item.auto_approved"] == kinds[("auto_approve", "auto_approved", False, 0.0)]
    )
    assert audit_actions["item.approved"] + audit_actions["item.overridden"] == reviewed
    # Spread over four weeks before today, each era in its own days.
    assert all(r.created_at <= r.decided_at <= now for r in rows)
    for era in demo_data.ERAS:
        days = {
            (now.date() - r.created_at.date()).days
            for r in by_version[demo_data.ERAS.index(era) + 1]
        }
        assert era.last_day <= min(days) and max(days) <= era.first_day


def test_seed_demo_twice_changes_nothing_and_says_so(app, runner):
    first = runner.invoke(args=["seed", "demo", "--password", "my-own-secret"])
    assert first.exit_code == 0, first.output
    assert "password: my-own-secret" in first.output
    before = {model: count(app, model) for model in (User, Queue, Item, Review, ModelVersion)}

    again = runner.invoke(args=["seed", "demo", "--password", "another-password"])

    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.output
    assert "another-password" not in again.output
    assert {model: count(app, model) for model in before} == before
    with app.app_context():
        assert accounts.authenticate(db_session(), "admin@demo.local", "my-own-secret")


def test_worker_routes_the_fresh_demo_tickets(app, runner):
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    before = statuses(app, "support-triage")
    with app.app_context():
        create_worker(app, simple=True).work(burst=True)
    routed = statuses(app, "support-triage")
    routed.subtract(before)
    assert routed["pending"] == -60
    # Some tickets are confident enough to auto-approve; most still need a person.
    assert 0 < routed["auto_approved"] < routed["needs_review"]
    assert routed["auto_approved"] + routed["needs_review"] == 60


def test_seed_demo_commits_even_when_redis_is_down(database_url, app):
    offline = create_app(
        {**app.config, "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    )
    try:
        result = offline.test_cli_runner().invoke(args=["seed", "demo"])
    finally:
        offline.extensions["db"].engine.dispose()
    assert result.exit_code == 0, result.output
    assert "Redis is unreachable" in result.output
    assert statuses(app, "support-triage")["pending"] == 60


# --- demo data -----------------------------------------------------------------------------


def test_demo_tickets_are_the_same_every_run():
    assert demo_data.history_tickets() == demo_data.history_tickets()
    fresh_ids = {t.external_id for t in demo_data.fresh_tickets()}
    assert not fresh_ids & {t.external_id for t in demo_data.history_tickets()}


def test_demo_tickets_cover_every_label_with_some_ambiguity():
    tickets = demo_data.history_tickets()
    assert Counter(t.true_label for t in tickets).keys() == set(demo_data.LABELS)
    shapes = Counter(t.shape for t in tickets)
    assert shapes["clear"] > len(tickets) / 2
    assert shapes["mixed"] > 10 and shapes["vague"] > 5


def test_overrides_carry_a_reason_code_the_queue_accepts():
    rng = random.Random(0)
    for ticket in demo_data.history_tickets():
        wrong = next(label for label in demo_data.LABELS if label != ticket.true_label)
        decision = demo_data.reviewer_decision(ticket, wrong, rng)
        assert decision["action"] == "override"
        assert decision["label"] == ticket.true_label
        assert decision["reason_code"] in demo_data.REASON_CODES
        assert decision["comment"]


def test_seeded_demo_supports_a_99_percent_target(app, runner, client):
    """The issue's walk-through: the policy owner asks for 99% and gets a threshold, with
    its interval and automation, for every label; the keyword era is a note, not a warning;
    the dashboard has a week of audits to set against the estimate. On a new database, as
    a user's first `dev.py start` has it."""
    # The local model holds out items by a hash of their id: the seeded demo's model, and
    # its figures, are those of a fresh install only when its ids are; one in ten other
    # starting ids leaves one label short of 99% (measured).
    ids_start_at_one(app)
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    login(client, demo_data.POLICY_OWNER_EMAIL, demo_data.DEMO_PASSWORD)

    page = client.get("/policy/queues/support-triage/?target_precision=99%")

    assert page.status_code == 200
    proposed = re.findall(
        r'data-proposal="(\w+)">.*?data-figure="proposed-threshold">([^<]+)<', page.text, re.S
    )
    assert {label for label, _ in proposed} == set(demo_data.LABELS)
    assert all(threshold != "none" for _, threshold in proposed), proposed
    assert 'data-warning="other-models"' not in page.text
    assert 'data-note="other-models"' in page.text
    dashboard = client.get("/policy/queues/support-triage/dashboard")
    audited = re.search(r'data-figure="audit-precision">([^<]+)<', dashboard.text)
    assert audited and "none yet" not in audited.group(1)
