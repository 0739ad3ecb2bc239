"""Command-line groups registered by app.py: `flask users`, `flask tokens`, `flask seed`.

Each command opens one session, calls services, and commits once at the end, so a
failing command changes nothing. Service errors are printed as one line with exit code 1.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from models import Item, ItemEvent, Queue, Recommendation, Review, RoutingRecord, User
from models.base import utcnow
from models.user import ROLES
from review import demo_data
from review.db import get_database
from review.redis_conn import get_rq_queue
from review.services import accounts, ingest, members, pipeline, queues, reviewing
from review.services.errors import NotFound, ServiceError

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
    decisions: int = 0
    overrides: int = 0
    model_version: int | None = None
    model_accuracy: float | None = None
    fresh_item_ids: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.users_created) or self.queue_created


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
    session: Session, queue: Queue, tickets: list[demo_data.DemoTicket], with_rules: bool
) -> list[Item]:
    """Ingest tickets through the same validation as the API; optionally with the legacy
    keyword engine's recommendation attached, as the old pipeline sent them."""
    raw = []
    for ticket in tickets:
        entry = {
            "external_id": ticket.external_id,
            "payload": ticket.payload,
            "priority": ticket.priority,
        }
        if with_rules:
            label, confidence, rationale = demo_data.keyword_guess(ticket.payload)
            entry["recommendation"] = {
                "label": label,
                "confidence": confidence,
                "model": demo_data.KEYWORD_MODEL,
                "rationale": rationale,
            }
        raw.append(entry)
    inputs, _ = ingest.parse_ingest_body({"items": raw}, queue)
    return [result.item for result in ingest.ingest(session, queue, inputs)]


def seed_history(
    session: Session, queue: Queue, users: dict[str, User], report: SeedReport
) -> None:
    """Past tickets, recommended by the keyword engine, decided by the demo reviewers."""
    tickets = demo_data.history_tickets()
    items = ingest_tickets(session, queue, tickets, with_rules=True)
    rng = random.Random(demo_data.DEMO_SEED)
    reviewers = [users[email] for email in demo_data.REVIEWER_EMAILS]
    for ticket, item in zip(tickets, items, strict=True):
        if item.status != "needs_review":  # the initial policy reviews everything
            continue
        body = demo_data.reviewer_decision(ticket, item.recommendation.label, rng)
        review = reviewing.decide(session, item.id, rng.choice(reviewers), body)
        report.decisions += 1
        report.overrides += review.action == "overridden"
    session.flush()
    schedule = demo_data.history_schedule(len(items), utcnow(), rng)
    backdate_history(session, [item.id for item in items], schedule)


def backdate_history(
    session: Session, item_ids: list[int], schedule: list[tuple[datetime, datetime]]
) -> None:
    """Move the past tickets' arrival, recommendation, routing and decision back to the
    given (arrived, decided) times, so the demo's history spans weeks rather than the
    second it was loaded in. The audit log keeps the real time of the load."""
    rows = [
        {"b_item": item_id, "b_arrived": arrived, "b_decided": decided}
        for item_id, (arrived, decided) in zip(item_ids, schedule, strict=True)
    ]
    item = Item.__table__
    changes: list[tuple[Any, Any, dict[str, Any]]] = [
        (item, item.c.id, {"created_at": "b_arrived", "routed_at": "b_arrived",
                           "decided_at": "b_decided", "updated_at": "b_decided"}),
        (Recommendation.__table__, Recommendation.__table__.c.item_id, {"created_at": "b_arrived"}),
        (RoutingRecord.__table__, RoutingRecord.__table__.c.item_id, {"created_at": "b_arrived"}),
        (Review.__table__, Review.__table__.c.item_id, {"decided_at": "b_decided"}),
        (ItemEvent.__table__, ItemEvent.__table__.c.item_id, {"created_at": "b_decided"}),
    ]  # fmt: skip
    connection = session.connection()
    for table, item_column, values in changes:
        statement = (
            update(table)
            .where(item_column == bindparam("b_item"))
            .values({column: bindparam(param) for column, param in values.items()})
        )
        connection.execute(statement, rows)
    session.expire_all()  # the loaded rows still hold the times of the load


def train_local_model(session: Session, queue: Queue, report: SeedReport) -> None:
    # Imported here: the workers package sits above the services in the layering.
    from workers.recommenders.local import train_for_queue

    model = train_for_queue(session, queue)
    if model is not None:
        report.model_version = model.version
        report.model_accuracy = model.metrics.get("accuracy")


def seed_demo_queue(session: Session, users: dict[str, User], report: SeedReport) -> None:
    """Create the demo queue with its history, policy, model and fresh pending tickets."""
    policy_owner = users[demo_data.POLICY_OWNER_EMAIL]
    queue = queues.create_queue(session, demo_data.DEMO_QUEUE, policy_owner)
    report.queue_created = True
    seed_history(session, queue, users, report)
    queues.create_policy_version(session, queue, demo_data.DEMO_POLICY, policy_owner)
    train_local_model(session, queue, report)
    fresh = ingest_tickets(session, queue, demo_data.fresh_tickets(), with_rules=False)
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
            f"Created queue {slug}: {report.decisions} past decisions "
            f"({report.overrides} overrides), {len(report.fresh_item_ids)} new tickets pending."
        )
        if report.model_version is None:
            click.echo("Warning: the local model could not be trained; items go to review.")
        else:
            click.echo(
                f"Trained local model v{report.model_version} "
                f"(held-out accuracy {report.model_accuracy:.0%})."
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
