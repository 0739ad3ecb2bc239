"""Command-line groups registered by app.py: `flask users`, `flask tokens`, `flask seed`.

Each command opens one session, calls services, and commits once at the end, so a
failing command changes nothing. Service errors are printed as one line with exit code 1.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Item, ModelVersion, PolicyVersion, Queue, User
from models.base import utcnow
from models.user import ROLES
from review import demo_data, demo_history
from review.db import get_database
from review.redis_conn import get_rq_queue
from review.services import accounts, ingest, members, pipeline, queues
from review.services.errors import NotFound, ServiceError
from review.services.routing import RecommendationInput

users_cli = AppGroup("users", help="Manage user accounts.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")
seed_cli = AppGroup("seed", help="Load data.")


@contextmanager
def service_session() -> Iterator[Session]:
    """A committed-on-success session; a ServiceError becomes a one-line error, exit code 1."""
    try:
        with get_database().session() as session:
            yield session
    except ServiceError as exc:
        details = "; ".join(f"{name}: {problem}" for name, problem in exc.fields.items())
        message = f"{exc.message} ({details})" if details else exc.message
        raise click.ClickException(message) from exc


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user {email}", {"email": "no such user"})
    return user


@users_cli.command("create")
@click.argument("email")
# The role is checked by the service, like every other field, so all bad input exits 1.
@click.option("--role", required=True, help=f"One of: {', '.join(ROLES)}.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters; asked for if not given.",
)
@click.option("--name", default="", help="Display name shown in the UI.")
def create_user_command(email: str, role: str, password: str, name: str) -> None:
    """Create a user who can log in to the web UI."""
    with service_session() as session:
        user = accounts.create_user(session, email, role, password, display_name=name)
        click.echo(f"Created {user.role} {user.email}.")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="", help="What the token is for, e.g. 'ingest job'.")
# Checked by the service against the user's role, like the web form, so bad input exits 1.
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help=f"Repeatable; one of {', '.join(accounts.SCOPES)}. Default: all the user's role allows.",
)
@click.option("--expires-in", default="", help="Lifetime: 30d, 12h or 90m. Default: never.")
def create_token_command(email: str, name: str, scopes: tuple[str, ...], expires_in: str) -> None:
    """Create an API token acting as EMAIL. The secret is printed once, never stored."""
    with service_session() as session:
        user = user_by_email(session, email)
        expires_at = accounts.parse_expires_in(expires_in, utcnow())
        token, plaintext = accounts.create_token(
            session, user, name=name, expires_at=expires_at, scopes=scopes or None
        )
        until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        click.echo(
            f"Token {token.prefix}… for {user.email}, scopes {', '.join(token.scopes)}{until}"
            " (shown once, store it now):"
        )
        click.echo(plaintext)


@tokens_cli.command("revoke")
@click.argument("prefix")
def revoke_token_command(prefix: str) -> None:
    """Revoke the token whose listed prefix (rwb_xxxxxx) is PREFIX; it stops at once."""
    with service_session() as session:
        token = accounts.token_by_prefix(session, prefix)
        accounts.revoke_token(session, token.id, None)
        click.echo(f"Revoked {token.prefix}… of {token.user.email}.")


@dataclass
class SeedReport:
    """What `seed demo` changed, for the summary it prints."""

    users_created: list[str] = field(default_factory=list)
    queue_created: bool = False
    past_items: int = 0
    decisions: int = 0
    overrides: int = 0
    auto_approved: int = 0
    audited: int = 0
    model_version: int | None = None
    model_accuracy: float | None = None
    fresh_item_ids: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.users_created) or self.queue_created

    def count(self, past: list[demo_history.PastItem]) -> None:
        self.past_items += len(past)
        for entry in past:
            if entry.decision is None:
                self.auto_approved += 1
                continue
            self.decisions += 1
            self.overrides += entry.decision.body["action"] == "override"
            self.audited += entry.plan.audit


def seed_users(session: Session, password: str, report: SeedReport) -> dict[str, User]:
    """The demo users by email, creating those that do not exist yet."""
    users = {}
    for demo_user in demo_data.DEMO_USERS:
        existing = session.scalar(select(User).where(User.email == demo_user.email))
        if existing is None:
            existing = accounts.create_user(
                session, demo_user.email, demo_user.role, password, demo_user.display_name
            )
            report.users_created.append(demo_user.email)
        users[demo_user.email] = existing
    return users


def ingest_tickets(
    session: Session, queue: Queue, tickets: list[demo_data.DemoTicket]
) -> list[Item]:
    """Ingest tickets through the same validation as the API; they wait for the worker."""
    raw = [
        {"external_id": t.external_id, "payload": t.payload, "priority": t.priority}
        for t in tickets
    ]
    inputs, _ = ingest.parse_ingest_body({"items": raw}, queue)
    return [result.item for result in ingest.ingest(session, queue, inputs)]


@dataclass
class DemoHistory:
    """What the eras of the demo's past share while they are written."""

    session: Session
    queue: Queue
    reviewers: list[User]
    now: datetime
    rng: random.Random
    report: SeedReport

    def era(
        self,
        era: demo_data.Era,
        tickets: list[demo_data.DemoTicket],
        recommend: demo_history.Recommend,
    ) -> None:
        """Write the era's tickets as the policy in force decided them."""
        policy = queues.current_policy(self.session, self.queue)
        arrivals = demo_data.arrivals(era, self.now, self.rng)
        past = demo_history.plan_era(
            tickets, arrivals, recommend, policy, self.queue, self.reviewers, self.now, self.rng
        )
        demo_history.write_past_items(self.session, self.queue, policy, past)
        self.report.count(past)


def local_recommend(session: Session, queue: Queue) -> demo_history.Recommend:
    """The queue's active local model, recommending for demo tickets."""
    # Imported here: the workers package sits above the services in the layering.
    from workers.recommenders.local import local_recommender_for

    recommender = local_recommender_for(session, queue)

    def recommend(tickets: Sequence[demo_data.DemoTicket]) -> list[RecommendationInput]:
        # Transient items, never added to the session: the recommender reads the payload.
        answers = recommender.recommend([Item(payload=t.payload) for t in tickets])
        if any(answer is None for answer in answers):
            raise click.ClickException("the demo's local model gave no recommendation")
        return [answer for answer in answers if answer is not None]

    return recommend


def train_local_model(session: Session, queue: Queue, report: SeedReport) -> None:
    # Imported here: the workers package sits above the services in the layering.
    from workers.recommenders.local import train_for_queue

    model = train_for_queue(session, queue)
    if model is None:
        raise click.ClickException("the demo's local model could not be trained")
    report.model_version = model.version
    report.model_accuracy = model.metrics.get("accuracy")


def seed_history(
    session: Session, queue: Queue, users: dict[str, User], report: SeedReport
) -> None:
    """The demo's past, era by era (review/demo_data.py ERAS): the keyword engine with
    everything reviewed; local-v1, trained on those decisions, in shadow; the demo policy
    with its audit. Policy and model versions are dated from their era's start."""
    policy_owner = users[demo_data.POLICY_OWNER_EMAIL]
    reviewers = [users[email] for email in demo_data.REVIEWER_EMAILS]
    now = utcnow()
    history = DemoHistory(
        session, queue, reviewers, now, random.Random(demo_data.DEMO_SEED), report
    )
    (keyword, keyword_tickets), (shadow, shadow_tickets), (policy, policy_tickets) = (
        demo_data.era_tickets()
    )
    history.era(keyword, keyword_tickets, partial(demo_history.keyword_recommend, queue))
    train_local_model(session, queue, report)
    queues.create_policy_version(session, queue, demo_data.SHADOW_POLICY, policy_owner)
    recommend = local_recommend(session, queue)
    history.era(shadow, shadow_tickets, recommend)
    queues.create_policy_version(session, queue, demo_data.DEMO_POLICY, policy_owner)
    history.era(policy, policy_tickets, recommend)
    date_the_versions(session, queue, now)


def date_the_versions(session: Session, queue: Queue, now: datetime) -> None:
    """Move the queue, its policy versions and its model back to when the story has them
    begin: the queue and version 1 with the keyword era, the model and each later policy
    version at the start of the era it governs. The audit log keeps the real time."""
    starts = [demo_data.era_start(era, now) for era in demo_data.ERAS]
    queue.created_at = starts[0]
    versions = session.scalars(
        select(PolicyVersion)
        .where(PolicyVersion.queue_id == queue.id)
        .order_by(PolicyVersion.version)
    ).all()
    for version, start in zip(versions, starts, strict=True):
        version.created_at = version.activated_at = start
    for model in session.scalars(select(ModelVersion).where(ModelVersion.queue_id == queue.id)):
        model.created_at = starts[1] - timedelta(minutes=30)  # trained just before shadow
    session.flush()


def seed_demo_queue(session: Session, users: dict[str, User], report: SeedReport) -> None:
    """Create the demo queue with its history, policies, model and fresh pending tickets."""
    queue = queues.create_queue(session, demo_data.DEMO_QUEUE, users[demo_data.POLICY_OWNER_EMAIL])
    report.queue_created = True
    seed_history(session, queue, users, report)
    fresh = ingest_tickets(session, queue, demo_data.fresh_tickets())
    report.fresh_item_ids = [item.id for item in fresh if item.status == "pending"]


def seed_demo_members(session: Session, users: dict[str, User]) -> None:
    """The demo reviewers and the policy owner work the demo queue (idempotent)."""
    queue = queues.get_queue(session, demo_data.DEMO_QUEUE["slug"])
    for email in (*demo_data.REVIEWER_EMAILS, demo_data.POLICY_OWNER_EMAIL):
        members.add_member(session, queue, users[email], None)


def print_seed_report(report: SeedReport, password: str) -> None:
    if not report.changed:
        click.echo("Demo data already present; nothing changed.")
    for email in report.users_created:
        click.echo(f"Created user {email}")
    if report.queue_created:
        slug = demo_data.DEMO_QUEUE["slug"]
        click.echo(
            f"Created queue {slug} with {report.past_items:,} past tickets over "
            f"{demo_data.HISTORY_DAYS} days: {report.decisions:,} decided by reviewers "
            f"({report.overrides:,} overrides, {report.audited} audit samples), "
            f"{report.auto_approved:,} auto-approved; "
            f"{len(report.fresh_item_ids)} new tickets pending."
        )
        click.echo(
            f"Local model v{report.model_version} trained on the keyword era "
            f"(held-out accuracy {report.model_accuracy:.0%}), recommending since."
        )
    click.echo("Demo logins:")
    for demo_user in demo_data.DEMO_USERS:
        shown = password if demo_user.email in report.users_created else "(unchanged)"
        click.echo(f"  {demo_user.email:<24} {demo_user.role:<13} password: {shown}")


@seed_cli.command("demo")
@click.option(
    "--password",
    default=demo_data.DEMO_PASSWORD,
    show_default=True,
    help="Password for the demo users created by this run.",
)
def seed_demo_command(password: str) -> None:
    """Load the support-triage demo. Safe to run again: existing data is left alone."""
    report = SeedReport()
    with service_session() as session:
        users = seed_users(session, password, report)
        slug = demo_data.DEMO_QUEUE["slug"]
        if session.scalar(select(Queue.id).where(Queue.slug == slug)) is None:
            seed_demo_queue(session, users, report)
        seed_demo_members(session, users)
    # Enqueue only after the commit, so a worker never looks for rows it cannot see yet.
    if report.fresh_item_ids and not pipeline.enqueue_recommendations(
        get_rq_queue(), report.fresh_item_ids
    ):
        click.echo("Warning: Redis is unreachable; the worker's sweeper will pick the items up.")
    print_seed_report(report, password)
